// mul8s_tw: a signed 8x8 multiplier in EvoApproxLib's C convention (unsigned operand and
// return types, two's complement inside) whose two low product bits are dropped.
// Its Verilog twin is mul8s_tw.v: `axhw add mul8s_tw.c --twin mul8s_tw.v`.
#include <stdint.h>

uint16_t mul8s_tw(uint8_t A, uint8_t B)
{
  int16_t P = (int16_t)((int8_t)A * (int8_t)B);
  return (uint16_t)(P & ~3);
}
