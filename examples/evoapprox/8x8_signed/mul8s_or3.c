// mul8s_or3: a signed 8x8 multiplier (EvoApproxLib's C convention) that sets the two low
// product bits, a design with a positive bias. One of a folder `axhw add` reads together.
#include <stdint.h>

uint16_t mul8s_or3(uint8_t A, uint8_t B)
{
  int16_t P = (int16_t)((int8_t)A * (int8_t)B);
  return (uint16_t)(P | 3);
}
