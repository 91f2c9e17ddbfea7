// mul8s_lo1: a signed 8x8 multiplier (EvoApproxLib's C convention) that forces the low
// product bit to 0. One of a folder of designs `axhw add evoapprox/8x8_signed/` reads together.
#include <stdint.h>

uint16_t mul8s_lo1(uint8_t A, uint8_t B)
{
  int16_t P = (int16_t)((int8_t)A * (int8_t)B);
  return (uint16_t)(P & ~1);
}
