//===- QuantizeKernel.cpp - Hopper FP8 quantization kernels ---------------===//
//
// Memory-bound kernels, written so that their results are bit-identical to
// numerics::quantize and requantizeTransposed: amax over the finite
// elements of a group, s = max(amax, 1e-4) / 448 in FP32 (or the next power
// of two), q = cvt.rn.satfinite.e4m3(x / s) with an IEEE division.
//
//   1x128: one warp per group of 128 elements, 4 per lane (one 8- or
//          16-byte load), amax by butterfly shuffles, one 4-byte store of
//          FP8 per lane.
//   128x128: one CTA per block, 64 elements per thread, amax across the
//          eight warps through shared memory.
//   RMSNorm + 1x128: one CTA per row; the sum of squares through the warps
//          and shared memory, then each warp normalizes and quantizes every
//          eighth group. SwiGLU + 1x128: as 1x128, reading gate and up.
//   128x1 (quantization, or re-quantization of 1x128 tiles): one CTA per
//          128x128 tile; a thread owns four adjacent columns over 16 rows,
//          loads (or dequantizes) them into registers with all loads in
//          flight at once (a warp reads whole tile rows), the eight warps
//          agree on each column's amax through shared memory, and each
//          column's 16 bytes go out in one 16-byte store as part of a row of
//          the transposed output.
//
//===----------------------------------------------------------------------===//

#include "octet/Target/CUDA/QuantizeKernel.h"

#include "KernelBuilder.h"

#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace octet::cuda;
using octet::runtime::QuantizeKind;

namespace {

class QuantizeWriter : public KernelBuilder {
public:
  QuantizeWriter(OpBuilder &b, Location loc, const QuantizeKernelSpec &spec)
      : KernelBuilder(b, loc), spec(spec) {}

  gpu::GPUFuncOp build();

private:
  void buildTile();
  void buildRMSNorm();
  void buildBlock();
  void buildTranspose();

  /// |x| for finite x, else 0: infinities and NaN do not set the scale.
  Value finiteAbs(Value x) {
    // Clearing the sign bit: the GPU lowering routes llvm.fabs to libdevice.
    Value bits = arith::BitcastOp::create(b, loc, i32, x);
    Value a = arith::BitcastOp::create(
        b, loc, f32, arith::AndIOp::create(b, loc, bits, c32(0x7FFFFFFF)));
    Value finite = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, a,
                                         cf32(INFINITY));
    return select(finite, a, cf32(0.0));
  }
  Value maxF(Value x, Value y) {
    return arith::MaxNumFOp::create(b, loc, x, y);
  }
  /// `v` combined across the warp by butterfly shuffles, in every lane.
  Value warpReduce(Value v, function_ref<Value(Value, Value)> combine) {
    for (int offset : {16, 8, 4, 2, 1}) {
      Value other =
          NVVM::ShflOp::create(b, loc, f32, c32(-1), v, c32(offset), c32(0x1f),
                               NVVM::ShflKind::bfly, UnitAttr());
      v = combine(v, other);
    }
    return v;
  }
  /// The warp's maximum of `v`, in every lane.
  Value warpMax(Value v) {
    return warpReduce(v, [&](Value x, Value y) { return maxF(x, y); });
  }
  /// The recipe's scale of a group with maximum `amax`.
  Value scaleOf(Value amax) {
    Value s =
        arith::DivFOp::create(b, loc, maxF(amax, cf32(1e-4)), cf32(448.0));
    if (!spec.pow2)
      return s;
    // 2^ceil(log2(s)) of a positive normal s: round the bits up to the next
    // exponent unless the mantissa is already zero.
    Value bits = arith::BitcastOp::create(b, loc, i32, s);
    Value up = arith::AndIOp::create(b, loc, add(bits, c32(0x7FFFFF)),
                                     c32(int32_t(0xFF800000)));
    return arith::BitcastOp::create(b, loc, f32, up);
  }
  /// Four FP32 values to four E4M3 bytes, the first in the lowest byte.
  Value packFP8(ArrayRef<Value> x, Value scale) {
    SmallVector<Value, 4> q;
    for (Value v : x)
      q.push_back(arith::DivFOp::create(b, loc, v, scale));
    Type e4m3 = b.getType<Float8E4M3FNType>();
    auto pair = [&](Value lo, Value hi) {
      // cvt.rn.satfinite.e4m3x2.f32 d, a, b puts a in the upper byte.
      Value p = NVVM::ConvertF32x2ToF8x2Op::create(
          b, loc, i16, hi, lo, NVVM::FPRoundingMode::RN,
          NVVM::SaturationMode::SATFINITE, /*relu=*/false, e4m3);
      return arith::ExtUIOp::create(b, loc, i32, p);
    };
    Value low = pair(q[0], q[1]), high = pair(q[2], q[3]);
    return arith::OrIOp::create(b, loc, low,
                                arith::ShLIOp::create(b, loc, high, c32(16)));
  }
  /// One E4M3 byte to FP32 (exact).
  Value fp8ToF32(Value byte) {
    auto bytes = VectorType::get({2}, i8);
    Value packed = LLVM::InsertElementOp::create(
        b, loc, LLVM::PoisonOp::create(b, loc, bytes), byte, c32(0));
    auto halfPair = VectorType::get({2}, b.getF16Type());
    Value pair = NVVM::ConvertF8x2ToF16x2Op::create(
        b, loc, halfPair, packed, /*relu=*/false,
        b.getType<Float8E4M3FNType>());
    Value half = LLVM::ExtractElementOp::create(b, loc, pair, c32(0));
    return arith::ExtFOp::create(b, loc, f32, half);
  }
  /// Four consecutive input elements from `x` at element `index`, as FP32.
  SmallVector<Value, 4> load4(Value x, Value index) {
    return load4(x, index, spec.inputBF16);
  }
  SmallVector<Value, 4> load4(Value x, Value index, bool isBF16) {
    Type elem = isBF16 ? bf16 : f32;
    auto vec = VectorType::get({4}, elem);
    Value v = LLVM::LoadOp::create(b, loc, vec, gep(x, elem, index));
    SmallVector<Value, 4> out;
    for (int i = 0; i < 4; ++i) {
      Value e = LLVM::ExtractElementOp::create(b, loc, v, c32(i));
      out.push_back(isBF16 ? Value(arith::ExtFOp::create(b, loc, f32, e)) : e);
    }
    return out;
  }
  /// A fused producer's result as its op would have stored it: BF16
  /// inputs give BF16 results.
  Value roundToInput(Value v) {
    if (!spec.inputBF16)
      return v;
    Value rounded = arith::TruncFOp::create(b, loc, bf16, v);
    return arith::ExtFOp::create(b, loc, f32, rounded);
  }
  /// The warp's sum of `v`, in every lane.
  Value warpSum(Value v) {
    return warpReduce(v, [&](Value x, Value y) -> Value {
      return arith::AddFOp::create(b, loc, x, y);
    });
  }
  /// Quantizes the 128-element group at element `index` (one warp, four
  /// values per lane) and stores its bytes and, from lane 0, its scale.
  void quantizeGroup(ArrayRef<Value> v, Value q, Value index, Value scales,
                     Value scaleIndex, Value lane) {
    Value amax = finiteAbs(v[0]);
    for (int i = 1; i < 4; ++i)
      amax = maxF(amax, finiteAbs(v[i]));
    Value scale = scaleOf(warpMax(amax));
    Value word = packFP8(v, scale);
    LLVM::StoreOp::create(b, loc, word, gep(q, i8, index));
    scf::IfOp::create(b, loc, cmp(Pred::eq, lane, c32(0)),
                      [&](OpBuilder &, Location) {
                        store(scale, scales, scaleIndex);
                        scf::YieldOp::create(b, loc);
                      });
  }
  /// A small static shared-memory array of FP32.
  Value sharedFloats(StringRef symbol, int64_t count) {
    auto module = b.getInsertionBlock()
                      ->getParentOp()
                      ->getParentOfType<gpu::GPUModuleOp>();
    if (!module.lookupSymbol(symbol)) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      LLVM::GlobalOp::create(b, loc, LLVM::LLVMArrayType::get(f32, count),
                             /*isConstant=*/false, LLVM::Linkage::Internal,
                             symbol, Attribute(), /*alignment=*/16,
                             /*addrSpace=*/3);
    }
    return LLVM::AddressOfOp::create(b, loc, ptrShared, symbol);
  }

  const QuantizeKernelSpec &spec;
  Value tid;
};

} // namespace

void QuantizeWriter::buildTile() {
  auto func = cast<gpu::GPUFuncOp>(b.getInsertionBlock()->getParentOp());
  // SwiGLU reads gate and up; the plain kernel reads x.
  bool swiglu = spec.kind == QuantizeKind::SwiGLU1x128;
  unsigned out = swiglu ? 2 : 1;
  Value x = func.getArgument(0), up = swiglu ? func.getArgument(1) : Value(),
        q = func.getArgument(out), scales = func.getArgument(out + 1),
        rows = func.getArgument(out + 2), cols = func.getArgument(out + 3);
  Value lane = rem(tid, c32(32));
  Value warps = mul(NVVM::GridDimXOp::create(b, loc, i32), c32(8));
  Value first = add(mul(NVVM::BlockIdXOp::create(b, loc, i32), c32(8)),
                    div(tid, c32(32)));
  Value perRow = div(cols, c32(128));
  Value groups = mul(rows, perRow);
  scf::ForOp::create(
      b, loc, first, groups, warps, ValueRange{},
      [&](OpBuilder &, Location, Value g, ValueRange) {
        Value r = div(g, perRow), cg = rem(g, perRow);
        Value index = add(mul(toI64(r), toI64(cols)),
                          toI64(add(mul(cg, c32(128)), mul(lane, c32(4)))));
        SmallVector<Value, 4> v = load4(x, index);
        if (swiglu) {
          // gate * sigmoid(gate) * up, in the CPU kernel's order.
          SmallVector<Value, 4> u = load4(up, index);
          for (int i = 0; i < 4; ++i) {
            Value negated = arith::NegFOp::create(b, loc, v[i]);
            Value e = math::ExpOp::create(b, loc, negated);
            Value sigmoid = arith::DivFOp::create(
                b, loc, cf32(1.0), arith::AddFOp::create(b, loc, cf32(1.0), e));
            Value silu = arith::MulFOp::create(b, loc, v[i], sigmoid);
            v[i] = roundToInput(arith::MulFOp::create(b, loc, silu, u[i]));
          }
        }
        quantizeGroup(v, q, index, scales, add(mul(cg, rows), r), lane);
        scf::YieldOp::create(b, loc);
      });
}

void QuantizeWriter::buildRMSNorm() {
  auto func = cast<gpu::GPUFuncOp>(b.getInsertionBlock()->getParentOp());
  Value x = func.getArgument(0), gamma = func.getArgument(1),
        q = func.getArgument(2), scales = func.getArgument(3),
        rows = func.getArgument(4), cols = func.getArgument(5),
        epsilon = func.getArgument(6);
  Value row = NVVM::BlockIdXOp::create(b, loc, i32);
  Value lane = rem(tid, c32(32)), warp = div(tid, c32(32));
  Value rowBase = mul(toI64(row), toI64(cols));
  // Sum of squares: four elements per thread per 1024-element chunk.
  auto sumLoop = scf::ForOp::create(
      b, loc, mul(tid, c32(4)), cols, c32(4 * QuantizeKernelSpec::kThreads),
      ValueRange{cf32(0.0)},
      [&](OpBuilder &, Location, Value d, ValueRange acc) {
        SmallVector<Value, 4> v = load4(x, add(rowBase, toI64(d)));
        Value sum = acc[0];
        for (Value e : v)
          sum = arith::AddFOp::create(b, loc, sum,
                                      arith::MulFOp::create(b, loc, e, e));
        scf::YieldOp::create(b, loc, ValueRange{sum});
      });
  Value partial = sharedFloats("octet_rmsnorm_sum", 8);
  Value warpTotal = warpSum(sumLoop.getResult(0));
  scf::IfOp::create(b, loc, cmp(Pred::eq, lane, c32(0)),
                    [&](OpBuilder &, Location) {
                      store(warpTotal, partial, warp);
                      scf::YieldOp::create(b, loc);
                    });
  NVVM::Barrier0Op::create(b, loc);
  Value total = load(f32, partial, c32(0));
  for (int w = 1; w < 8; ++w)
    total = arith::AddFOp::create(b, loc, total, load(f32, partial, c32(w)));
  // 1 / sqrt(sum / dim + epsilon), as the CPU kernel.
  Value dim = arith::UIToFPOp::create(b, loc, f32, cols);
  Value mean = arith::DivFOp::create(b, loc, total, dim);
  Value root = math::SqrtOp::create(
      b, loc, arith::AddFOp::create(b, loc, mean, epsilon));
  Value inverse = arith::DivFOp::create(b, loc, cf32(1.0), root);
  // Each warp normalizes and quantizes every eighth group of the row.
  scf::ForOp::create(
      b, loc, warp, div(cols, c32(128)), c32(8), ValueRange{},
      [&](OpBuilder &, Location, Value g, ValueRange) {
        Value d = add(mul(g, c32(128)), mul(lane, c32(4)));
        SmallVector<Value, 4> v = load4(x, add(rowBase, toI64(d)));
        SmallVector<Value, 4> w = load4(gamma, toI64(d), spec.gammaBF16);
        for (int i = 0; i < 4; ++i)
          v[i] = roundToInput(arith::MulFOp::create(
              b, loc, arith::MulFOp::create(b, loc, v[i], inverse), w[i]));
        quantizeGroup(v, q, add(rowBase, toI64(d)), scales,
                      add(mul(g, rows), row), lane);
        scf::YieldOp::create(b, loc);
      });
}

void QuantizeWriter::buildBlock() {
  auto func = cast<gpu::GPUFuncOp>(b.getInsertionBlock()->getParentOp());
  Value x = func.getArgument(0), q = func.getArgument(1),
        scales = func.getArgument(2), rows = func.getArgument(3),
        cols = func.getArgument(4);
  Value cb = NVVM::BlockIdXOp::create(b, loc, i32);
  Value rb = NVVM::BlockIdYOp::create(b, loc, i32);
  Value batch = NVVM::BlockIdZOp::create(b, loc, i32);
  Value lane = rem(tid, c32(32)), warp = div(tid, c32(32));
  Value base = mul(mul(toI64(batch), toI64(rows)), toI64(cols));
  Value col = add(mul(cb, c32(128)), mul(lane, c32(4)));
  // Row i of this thread: rb * 128 + warp + 8 i; rows past the end count as
  // zeros and are not stored.
  SmallVector<SmallVector<Value, 4>> values;
  SmallVector<Value> inside, indices;
  Value amax = cf32(0.0);
  for (int i = 0; i < 16; ++i) {
    Value r = add(add(mul(rb, c32(128)), warp), c32(8 * i));
    Value ok = cmp(Pred::ult, r, rows);
    Value index =
        add(base, add(mul(toI64(minU(r, sub(rows, c32(1)))), toI64(cols)),
                      toI64(col)));
    SmallVector<Value, 4> v = load4(x, index);
    for (Value &e : v)
      e = select(ok, e, cf32(0.0));
    for (Value e : v)
      amax = maxF(amax, finiteAbs(e));
    values.push_back(v);
    inside.push_back(ok);
    indices.push_back(index);
  }
  amax = warpMax(amax);
  Value partial = sharedFloats("octet_quantize_amax", 8);
  scf::IfOp::create(b, loc, cmp(Pred::eq, lane, c32(0)),
                    [&](OpBuilder &, Location) {
                      store(amax, partial, warp);
                      scf::YieldOp::create(b, loc);
                    });
  NVVM::Barrier0Op::create(b, loc);
  Value blockMax = load(f32, partial, c32(0));
  for (int w = 1; w < 8; ++w)
    blockMax = maxF(blockMax, load(f32, partial, c32(w)));
  Value scale = scaleOf(blockMax);
  for (int i = 0; i < 16; ++i) {
    Value word = packFP8(values[i], scale);
    scf::IfOp::create(b, loc, inside[i], [&, i](OpBuilder &, Location) {
      LLVM::StoreOp::create(b, loc, word, gep(q, i8, indices[i]));
      scf::YieldOp::create(b, loc);
    });
  }
  Value blocksPerCol = ceilDiv(rows, 128);
  Value blocksPerRow = div(cols, c32(128));
  scf::IfOp::create(
      b, loc, cmp(Pred::eq, tid, c32(0)), [&](OpBuilder &, Location) {
        Value s = add(mul(add(mul(batch, blocksPerCol), rb), blocksPerRow), cb);
        store(scale, scales, s);
        scf::YieldOp::create(b, loc);
      });
}

void QuantizeWriter::buildTranspose() {
  auto func = cast<gpu::GPUFuncOp>(b.getInsertionBlock()->getParentOp());
  // Re-quantization reads FP8 and its 1x128 scales; quantization reads x.
  bool requantize = spec.kind == QuantizeKind::Transpose128x1;
  unsigned first = requantize ? 2 : 1;
  Value qIn = func.getArgument(0),
        sIn = requantize ? func.getArgument(1) : Value(),
        qOut = func.getArgument(first), sOut = func.getArgument(first + 1),
        rows = func.getArgument(first + 2), cols = func.getArgument(first + 3);
  Value cb = NVVM::BlockIdXOp::create(b, loc, i32);
  Value rb = NVVM::BlockIdYOp::create(b, loc, i32);
  // Lane l of warp w owns columns 4l..4l+3 of the tile and rows 16w..16w+15,
  // so a warp reads whole 128-column rows and every thread ends up with 16
  // consecutive bytes of four transposed rows.
  Value lane = rem(tid, c32(32)), warp = div(tid, c32(32));
  Value row0 = add(mul(rb, c32(128)), mul(warp, c32(16)));
  SmallVector<Value, 4> col, valid, colSafe;
  for (int64_t j = 0; j < 4; ++j) {
    // Columns past the end (the last tile of a ragged N) read the last
    // column and store nothing.
    col.push_back(add(mul(cb, c32(128)), add(mul(lane, c32(4)), c32(j))));
    valid.push_back(cmp(Pred::ult, col[j], cols));
    colSafe.push_back(minU(col[j], sub(cols, c32(1))));
  }
  // values[j][i]: element (row0 + i, col[j]) in FP32; re-quantization
  // dequantizes it as the CPU does (q * s in FP32). All loads are issued
  // before any use.
  SmallVector<SmallVector<Value, 16>, 4> values(4);
  SmallVector<Value, 4> amax(4, cf32(0.0));
  for (int64_t i = 0; i < 16; ++i) {
    Value r = add(row0, c32(i));
    Value rowBase = mul(toI64(r), toI64(cols));
    Value rowScale =
        requantize ? load(f32, sIn, add(mul(cb, rows), r)) : Value();
    for (int64_t j = 0; j < 4; ++j) {
      Value index = add(rowBase, toI64(colSafe[j]));
      Value v;
      if (requantize) {
        v = arith::MulFOp::create(b, loc, fp8ToF32(load(i8, qIn, index)),
                                  rowScale);
      } else {
        v = load(spec.inputBF16 ? bf16 : f32, qIn, index);
        if (spec.inputBF16)
          v = arith::ExtFOp::create(b, loc, f32, v);
      }
      values[j].push_back(v);
      amax[j] = maxF(amax[j], finiteAbs(v));
    }
  }
  // The eight warps agree on each column's amax through shared memory.
  Value partial = sharedFloats("octet_requantize_amax", 8 * 128);
  for (int64_t j = 0; j < 4; ++j)
    store(amax[j], partial,
          add(mul(warp, c32(128)), add(mul(lane, c32(4)), c32(j))));
  NVVM::Barrier0Op::create(b, loc);
  auto wordsType = VectorType::get({4}, i32);
  for (int64_t j = 0; j < 4; ++j) {
    Value inTile = add(mul(lane, c32(4)), c32(j));
    Value columnMax = load(f32, partial, inTile);
    for (int64_t w = 1; w < 8; ++w)
      columnMax =
          maxF(columnMax, load(f32, partial, add(c32(128 * w), inTile)));
    Value scale = scaleOf(columnMax);
    Value writer =
        arith::AndIOp::create(b, loc, valid[j], cmp(Pred::eq, warp, c32(0)));
    scf::IfOp::create(b, loc, writer, [&](OpBuilder &, Location) {
      store(scale, sOut, add(mul(rb, cols), col[j]));
      scf::YieldOp::create(b, loc);
    });
    // Column j, re-quantized, is a row of the transposed output: the
    // thread's 16 bytes in one store (rows is a multiple of 128, so it is
    // aligned).
    Value words = LLVM::PoisonOp::create(b, loc, wordsType);
    for (int64_t w = 0; w < 4; ++w)
      words = LLVM::InsertElementOp::create(
          b, loc, words,
          packFP8(ArrayRef<Value>(values[j]).slice(4 * w, 4), scale), c32(w));
    Value index = add(mul(toI64(col[j]), toI64(rows)), toI64(row0));
    scf::IfOp::create(b, loc, valid[j], [&](OpBuilder &, Location) {
      LLVM::StoreOp::create(b, loc, words, gep(qOut, i8, index), 16);
      scf::YieldOp::create(b, loc);
    });
  }
}

gpu::GPUFuncOp QuantizeWriter::build() {
  SmallVector<Type> args;
  if (spec.kind == QuantizeKind::Transpose128x1)
    args = {ptrGlobal, ptrGlobal, ptrGlobal, ptrGlobal, i32, i32};
  else if (spec.kind == QuantizeKind::Tile128x1)
    args = {ptrGlobal, ptrGlobal, ptrGlobal, i32, i32};
  else if (spec.kind == QuantizeKind::RMSNorm1x128)
    args = {ptrGlobal, ptrGlobal, ptrGlobal, ptrGlobal, i32, i32, f32};
  else if (spec.kind == QuantizeKind::SwiGLU1x128)
    args = {ptrGlobal, ptrGlobal, ptrGlobal, ptrGlobal, i32, i32};
  else
    args = {ptrGlobal, ptrGlobal, ptrGlobal, i32, i32};
  OpBuilder::InsertionGuard guard(b);
  auto func = createKernel(spec.name(), args, QuantizeKernelSpec::kThreads);
  tid = NVVM::ThreadIdXOp::create(b, loc, i32);
  switch (spec.kind) {
  case QuantizeKind::Tile1x128:
  case QuantizeKind::SwiGLU1x128:
    buildTile();
    break;
  case QuantizeKind::RMSNorm1x128:
    buildRMSNorm();
    break;
  case QuantizeKind::Block128x128:
    buildBlock();
    break;
  case QuantizeKind::Tile128x1:
  case QuantizeKind::Transpose128x1:
    buildTranspose();
    break;
  }
  gpu::ReturnOp::create(b, loc);
  return func;
}

gpu::GPUFuncOp
octet::cuda::buildQuantizeKernel(OpBuilder &builder, Location loc,
                                 const QuantizeKernelSpec &spec) {
  return QuantizeWriter(builder, loc, spec).build();
}
