// Independent checks of the block layouts and activation rounding: blocks built
// byte by byte from the GGUF/ggml layout description, decoded values worked out
// by hand in the comments; activation rounding (round half to even, q8_K sign
// convention, ties of the largest magnitude) against hand-computed bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/fp16.h"
#include "ops/cpu/quant_blocks.h"
#include "ops/quant.h"
#include "ops/reference/quant_ref.h"

namespace moe::ops {
namespace {

constexpr uint16_t kHalf = 0x3800, kOne = 0x3C00, kTwo = 0x4000, kMinusOne = 0xBC00;

// Decode with both the reference and the dispatching dequantizer.
std::vector<float> decode(GgmlType t, const void* blk, int64_t n) {
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  ref::dequantize_row_ref(t, blk, a.data(), n);
  dequantize_row(t, blk, b.data(), n);
  EXPECT_EQ(a, b);
  return a;
}

TEST(QuantLayout, F16AndBF16) {
  const uint16_t h[3] = {0x3C00, 0xC000, 0x0001};  // 1, -2, 2^-24 (subnormal)
  auto y = decode(GgmlType::F16, h, 3);
  EXPECT_EQ(y[0], 1.f);
  EXPECT_EQ(y[1], -2.f);
  EXPECT_EQ(y[2], 5.9604644775390625e-8f);
  const uint16_t b[2] = {0x3F80, 0xC040};  // 1, -3
  y = decode(GgmlType::BF16, b, 2);
  EXPECT_EQ(y[0], 1.f);
  EXPECT_EQ(y[1], -3.f);
}

TEST(QuantLayout, Q8_0) {
  uint8_t blk[34] = {};
  std::memcpy(blk, &kHalf, 2);  // d = 0.5
  blk[2 + 0] = 3;               // x0 = 1.5
  blk[2 + 31] = 0x80;           // x31 = 0.5 * -128
  const auto y = decode(GgmlType::Q8_0, blk, 32);
  EXPECT_EQ(y[0], 1.5f);
  EXPECT_EQ(y[1], 0.f);
  EXPECT_EQ(y[31], -64.f);
}

TEST(QuantLayout, Q4_0) {
  uint8_t blk[18] = {};
  std::memcpy(blk, &kTwo, 2);  // d = 2
  for (int j = 0; j < 16; ++j) blk[2 + j] = 0x88;  // all q = 8 -> 0
  blk[2 + 0] = 0x9F;   // x0 = 2*(15-8) = 14, x16 = 2*(9-8) = 2
  blk[2 + 15] = 0x08;  // x15 = 0, x31 = 2*(0-8) = -16
  const auto y = decode(GgmlType::Q4_0, blk, 32);
  EXPECT_EQ(y[0], 14.f);
  EXPECT_EQ(y[16], 2.f);
  EXPECT_EQ(y[15], 0.f);
  EXPECT_EQ(y[31], -16.f);
  EXPECT_EQ(y[5], 0.f);
}

TEST(QuantLayout, Q4_1) {
  uint8_t blk[20] = {};
  std::memcpy(blk, &kOne, 2);           // d = 1
  std::memcpy(blk + 2, &kMinusOne, 2);  // m = -1
  blk[4 + 1] = 0x5A;                    // x1 = 10 - 1 = 9, x17 = 5 - 1 = 4
  const auto y = decode(GgmlType::Q4_1, blk, 32);
  EXPECT_EQ(y[1], 9.f);
  EXPECT_EQ(y[17], 4.f);
  EXPECT_EQ(y[0], -1.f);
}

TEST(QuantLayout, Q5_0) {
  uint8_t blk[22] = {};
  std::memcpy(blk, &kOne, 2);
  const uint8_t qh[4] = {0x01, 0x00, 0x01, 0x80};  // 5th bit of x0, x16, x31
  std::memcpy(blk + 2, qh, 4);
  blk[6 + 0] = 0x23;   // x0 = (3|16) - 16 = 3, x16 = (2|16) - 16 = 2
  blk[6 + 15] = 0x70;  // x15 = 0 - 16, x31 = (7|16) - 16 = 7
  const auto y = decode(GgmlType::Q5_0, blk, 32);
  EXPECT_EQ(y[0], 3.f);
  EXPECT_EQ(y[16], 2.f);
  EXPECT_EQ(y[15], -16.f);
  EXPECT_EQ(y[31], 7.f);
  EXPECT_EQ(y[1], -16.f);
}

TEST(QuantLayout, Q5_1) {
  uint8_t blk[24] = {};
  std::memcpy(blk, &kHalf, 2);     // d = 0.5
  std::memcpy(blk + 2, &kOne, 2);  // m = 1
  blk[4 + 1] = 0x02;               // qh bit 9 -> x9
  blk[8 + 9] = 0x41;               // x9 = 0.5*(1|16) + 1 = 9.5, x25 = 0.5*4 + 1 = 3
  const auto y = decode(GgmlType::Q5_1, blk, 32);
  EXPECT_EQ(y[9], 9.5f);
  EXPECT_EQ(y[25], 3.f);
  EXPECT_EQ(y[0], 1.f);
}

TEST(QuantLayout, Mxfp4) {
  uint8_t blk[2][17] = {};
  blk[0][0] = 128;      // scale 2^(128-127) = 2
  blk[0][1 + 0] = 0xF7; // x0 = 6*2 = 12, x16 = -6*2 = -12
  blk[0][1 + 3] = 0x92; // x3 = 1*2 = 2, x19 = -0.5*2 = -1
  blk[1][0] = 126;      // scale 0.5
  blk[1][1 + 5] = 0x01; // x37 = 0.5*0.5 = 0.25
  const auto y = decode(GgmlType::MXFP4, blk, 64);
  EXPECT_EQ(y[0], 12.f);
  EXPECT_EQ(y[16], -12.f);
  EXPECT_EQ(y[3], 2.f);
  EXPECT_EQ(y[19], -1.f);
  EXPECT_EQ(y[32 + 5], 0.25f);
  EXPECT_EQ(y[1], 0.f);
}

// Scales shared by the Q4_K and Q5_K blocks below:
//   sub-block 0: sc = scales[0]&63 = 3, m = scales[4]&63 = 2
//   sub-block 1: sc = 0x47&63 = 7,      m = 0xC1&63 = 1
//   sub-block 5: sc = (scales[9]&15) | (scales[1]>>6)<<4 = 1|16 = 17,
//                m  = (scales[9]>>4) | (scales[5]>>6)<<4 = 2|48 = 50
void fill_k_scales(uint8_t* s) {
  s[0] = 3;
  s[4] = 2;
  s[1] = 0x47;
  s[5] = 0xC1;
  s[9] = 0x21;
}

TEST(QuantLayout, Q4_K) {
  BlockQ4K b{};
  b.d = kOne;
  b.dmin = kHalf;
  fill_k_scales(b.scales);
  b.qs[0] = 0x05;       // x0 (sub-block 0) = 1*3*5 - 0.5*2 = 14; x32 (sub-block 1) = 0 - 0.5*1
  b.qs[64 + 3] = 0xA0;  // chunk 2 high nibble -> x(160+3), sub-block 5: 17*10 - 0.5*50 = 145
  const auto y = decode(GgmlType::Q4_K, &b, 256);
  EXPECT_EQ(y[0], 14.f);
  EXPECT_EQ(y[32], -0.5f);
  EXPECT_EQ(y[163], 145.f);
  EXPECT_EQ(y[131], 0.f);  // sub-block 4: sc = m = 0
  EXPECT_EQ(y[1], -1.f);   // q = 0 in sub-block 0: -0.5*2
}

TEST(QuantLayout, Q5_K) {
  BlockQ5K b{};
  b.d = kOne;
  b.dmin = kHalf;
  fill_k_scales(b.scales);
  b.qs[0] = 0x05;
  b.qh[0] = 0x01;       // bit 0 of qh[0]: 5th bit of x0 -> q5 = 21: 3*21 - 1 = 62
  b.qs[64 + 3] = 0xA0;  // x163: q low = 10
  b.qh[3] = 0x20;       // bit 5 of qh[3]: sub-block 5, l = 3 -> q5 = 26: 17*26 - 25 = 417
  const auto y = decode(GgmlType::Q5_K, &b, 256);
  EXPECT_EQ(y[0], 62.f);
  EXPECT_EQ(y[163], 417.f);
  EXPECT_EQ(y[32], -0.5f);
  EXPECT_EQ(y[3], -1.f);
}

TEST(QuantLayout, Q6_K) {
  uint8_t raw[210] = {};
  uint8_t* ql = raw;
  uint8_t* qh = raw + 128;
  auto* sc = reinterpret_cast<int8_t*>(raw + 192);
  std::memcpy(raw + 208, &kHalf, 2);  // d = 0.5, stored last
  ql[0] = 0x35;
  ql[32] = 0x0F;
  qh[0] = 0xE6;  // bits 1-0 = 2, 3-2 = 1, 5-4 = 2, 7-6 = 3
  sc[0] = 2;
  sc[2] = 6;
  sc[4] = 4;
  sc[6] = 1;
  ql[64 + 32 + 17] = 0x70;  // half 1, l = 17: q4 uses ql[l+32] >> 4 = 7
  qh[32 + 17] = 0x40;       // and (qh[l] >> 6) & 3 = 1 -> 7|16 = 23 - 32 = -9
  sc[8 + 1 + 6] = -3;       // scale sc[is + 6], is = 1
  const auto y = decode(GgmlType::Q6_K, raw, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * 5);    // (5 | 2<<4) - 32 = 5
  EXPECT_EQ(y[32], 0.5f * 6 * -1);  // (15 | 1<<4) - 32 = -1
  EXPECT_EQ(y[64], 0.5f * 4 * 3);   // (3 | 2<<4) - 32 = 3
  EXPECT_EQ(y[96], 0.5f * 1 * 16);  // (0 | 3<<4) - 32 = 16
  EXPECT_EQ(y[128 + 96 + 17], 0.5f * -3 * -9);
  EXPECT_EQ(y[16], 0.f);        // sc[1] = 0
  EXPECT_EQ(y[1], 0.5f * 2 * -32);  // q = 0 -> -32
}

// q8_0 rounding: block 0 has amax 127 (id = 1), block 1 amax 254 (id = 0.5), block 2 zero.
TEST(ActivationRounding, Q8_0TiesToEven) {
  std::vector<float> x(96, 1.f);
  x[0] = 127.f;
  x[1] = 2.5f;   // -> 2
  x[2] = 3.5f;   // -> 4
  x[3] = -2.5f;  // -> -2
  x[4] = 0.5f;   // -> 0
  x[5] = -127.f;
  x[32] = -254.f;
  x[33] = 5.f;  // 2.5 -> 2
  x[34] = 7.f;  // 3.5 -> 4
  x[35] = 3.f;  // 1.5 -> 2
  for (int j = 64; j < 96; ++j) x[j] = 0.f;
  BlockQ8_0 b[3];
  quantize_activation_row(GgmlType::Q4_0, x.data(), b, 96);
  EXPECT_EQ(b[0].d, kOne);
  const int8_t want0[6] = {127, 2, 4, -2, 0, -127};
  for (int j = 0; j < 6; ++j) EXPECT_EQ(b[0].qs[j], want0[j]) << j;
  EXPECT_EQ(b[0].qs[6], 1);
  EXPECT_EQ(b[1].d, kTwo);
  const int8_t want1[5] = {-127, 2, 4, 2, 0};  // x = 1 -> 0.5 -> 0
  for (int j = 0; j < 5; ++j) EXPECT_EQ(b[1].qs[j], want1[j]) << j;
  EXPECT_EQ(b[2].d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b[2].qs[j], 0);
  BlockQ8_0 r[3];
  ref::quantize_row_q8_0_ref(x.data(), r, 96);
  EXPECT_EQ(std::memcmp(b, r, sizeof(b)), 0);
}

TEST(ActivationRounding, Q8_1Sum) {
  std::vector<float> x(32, 1.f);
  x[0] = 127.f;
  x[1] = 2.5f;  // -> 2
  BlockQ8_1 b;
  quantize_activation_row(GgmlType::Q4_1, x.data(), &b, 32);
  EXPECT_EQ(b.d, kOne);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.s, f32_to_fp16(127.f + 2.f + 30.f));  // s = d * sum(q) = 159
}

TEST(ActivationRounding, Q8_KSignAndTies) {
  std::vector<float> x(512, 0.5f);
  // block 0: largest magnitude is negative: m = -127, iscale = 1, d = 1
  x[0] = 2.5f;   // -> 2
  x[1] = -127.f;
  x[2] = -3.5f;  // -> -4
  x[3] = 127.f;  // tie in magnitude, the first (-127) wins
  // block 1: m = +12.7 (first of the tie with -12.7): iscale = -10, d = -0.1
  x[256] = 12.7f;
  x[257] = -12.7f;
  x[258] = 0.25f;  // -2.5 -> -2
  x[259] = 0.35f;  // -3.5 -> -4
  BlockQ8K b[2];
  quantize_activation_row(GgmlType::Q4_K, x.data(), b, 512);
  EXPECT_EQ(b[0].d, 1.f);
  EXPECT_EQ(b[0].qs[0], 2);
  EXPECT_EQ(b[0].qs[1], -127);
  EXPECT_EQ(b[0].qs[2], -4);
  EXPECT_EQ(b[0].qs[3], 127);
  EXPECT_EQ(b[0].qs[4], 0);  // 0.5 -> 0
  EXPECT_EQ(b[0].bsums[0], 2 - 127 - 4 + 127);
  const float iscale = -127.f / 12.7f;
  EXPECT_EQ(b[1].d, 1.f / iscale);
  EXPECT_EQ(b[1].qs[0], -127);
  EXPECT_EQ(b[1].qs[1], 127);
  EXPECT_EQ(b[1].qs[2], static_cast<int8_t>(std::nearbyint(0.25f * iscale)));
  EXPECT_EQ(b[1].qs[4], static_cast<int8_t>(std::nearbyint(0.5f * iscale)));
  int s = 0;
  for (int j = 0; j < 16; ++j) s += b[1].qs[j];
  EXPECT_EQ(b[1].bsums[0], s);
}

TEST(ActivationRounding, F16AndBF16TiesToEven) {
  // 1 + 2^-11 is halfway between fp16 1 and 1 + 2^-10: ties to even -> 1.
  // 1 + 3*2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: -> 1 + 2^-9.
  const float x[2] = {1.f + 0x1p-11f, 1.f + 3 * 0x1p-11f};
  uint16_t h[2];
  quantize_activation_row(GgmlType::F16, x, h, 2);
  EXPECT_EQ(h[0], 0x3C00);
  EXPECT_EQ(h[1], 0x3C02);
  const float y[2] = {1.f + 0x1p-8f, 1.f + 3 * 0x1p-8f};  // bf16 has 7 mantissa bits
  quantize_activation_row(GgmlType::BF16, y, h, 2);
  EXPECT_EQ(h[0], 0x3F80);
  EXPECT_EQ(h[1], 0x3F82);
}

}  // namespace
}  // namespace moe::ops
