// mul8u_tr4: an unsigned 8x8 multiplier in EvoApproxLib's C convention (uint8_t operands,
// uint16_t product) whose four low product bits are dropped. An example for `axhw add`.
#include <stdint.h>

uint16_t mul8u_tr4(uint8_t A, uint8_t B)
{
  uint16_t P = (uint16_t)A * (uint16_t)B;
  return P & 0xFFF0;
}
