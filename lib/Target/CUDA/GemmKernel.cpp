//===- GemmKernel.cpp - Hopper block-scaled FP8 GEMM generator ------------===//
//
// Writes one warp-specialised, persistent FP8 GEMM kernel as a `gpu.func` in
// the NVVM dialect. The structure (one CTA per SM, walking output tiles):
//
//   warpgroup 0 (producer, 40 registers): per K-group, one thread issues
//     TMA loads of the A and B tiles into a ring of `stages` 128-byte
//     swizzled shared-memory slots and the first warp copies the K-group's
//     scales next to them with cp.async; `full[s]` counts the bytes and the
//     copies in, `empty[s]` says the consumers are done with slot s.
//   warpgroups 1..C (consumers, 232 registers): each owns 64 rows of the
//     tile. Per promotion interval (promotion/32 wgmma m64nNk32 e4m3 x
//     e4m3 -> f32 into a scratch accumulator starting from zero, issued one
//     step ahead): wait for it, release the slot after a K-group's last
//     interval, promote (acc = fma(scratch, scaleA[row] * scaleB[col],
//     acc) per element), then issue the next interval (after waiting for
//     `full[s]` at a K-group boundary). The overlapped schedule
//     (`spec.overlap`) issues the next interval first, into a second
//     scratch accumulator, and waits with one group left in flight. A
//     K-group's scales are read from its slot. The epilogue stores BF16 or
//     FP32 with bounds checks, so M and N need not be multiples of the tile.
//
// The wgmma shared-memory descriptors are built by hand: the nvgpu
// descriptor op wants a tensor-map value the kernel does not have.
//
//===----------------------------------------------------------------------===//

#include "octet/Target/CUDA/GemmKernel.h"

#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace octet::cuda;
using Pred = arith::CmpIPredicate;

static constexpr llvm::StringLiteral kSharedMemorySymbol = "octet_gemm_smem";

namespace {

/// The IR-building state of one kernel: types, constants and the few idioms
/// (shared-memory addresses, ring advance, descriptors) used throughout.
class KernelWriter : public KernelBuilder {
public:
  KernelWriter(OpBuilder &b, Location loc, const GemmKernelSpec &spec)
      : KernelBuilder(b, loc), spec(spec) {
    accType = LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(spec.tileN / 2, f32));
  }

  gpu::GPUFuncOp build();

private:
  /// `v` through an empty volatile asm statement: the value is unchanged,
  /// but LLVM may not move its computation past, nor its uses before, any
  /// other side-effecting operation (the wgmma waits and issues). Without
  /// it LLVM may read a scratch accumulator before the wait that completes
  /// it, or sink a promotion below the next wgmma issue, which makes ptxas
  /// copy in-flight accumulator registers and serialize every wgmma
  /// (C7514/C7515). CUTLASS calls this fencing an operand.
  Value pin(Value v) {
    return LLVM::InlineAsmOp::create(
               b, loc, v.getType(), ValueRange{v}, b.getStringAttr(""),
               b.getStringAttr("=f,0"), b.getUnitAttr(), UnitAttr(),
               LLVM::TailCallKindAttr(), LLVM::AsmDialectAttr(), ArrayAttr())
        .getResult(0);
  }
  /// Shared-memory slots: the A tiles, the B tiles, then the barriers.
  Value smemA(Value stage) {
    return gep(smem, b.getI8Type(), mul(stage, c32(spec.tileM * spec.tileK)));
  }
  Value smemB(Value stage) {
    return gep(smem, b.getI8Type(),
               add(c32(spec.stages * spec.tileM * spec.tileK),
                   mul(stage, c32(spec.tileN * spec.tileK))));
  }
  /// A stage's scales: A's per tile row, then B's.
  Value smemScales(Value stage) {
    return gep(smem, b.getI8Type(),
               add(c32(spec.stages * spec.stageBytes()),
                   mul(stage, c32(spec.scaleBytes()))));
  }
  int64_t barrierBase() const {
    return spec.stages * (spec.stageBytes() + spec.scaleBytes());
  }
  Value fullBarrier(Value stage) {
    return gep(smem, b.getI8Type(),
               add(c32(barrierBase()), mul(stage, c32(8))));
  }
  Value emptyBarrier(Value stage) {
    return gep(smem, b.getI8Type(),
               add(c32(barrierBase() + spec.stages * 8), mul(stage, c32(8))));
  }
  /// The ring position after (stage, phase): phase flips on wrap-around.
  std::pair<Value, Value> advance(Value stage, Value phase) {
    Value next = add(stage, c32(1));
    Value wrap = cmp(arith::CmpIPredicate::eq, next, c32(spec.stages));
    Value flipped = arith::XOrIOp::create(b, loc, phase, c32(1));
    return {arith::SelectOp::create(b, loc, wrap, c32(0), next),
            arith::SelectOp::create(b, loc, wrap, flipped, phase)};
  }
  void waitParity(Value barrier, Value parity) {
    // The suspend-time hint, in ns, of CUTLASS's waits.
    NVVM::MBarrierTryWaitParityOp::create(b, loc, barrier, parity,
                                          c32(0x989680));
  }
  /// A wgmma descriptor for a K-major, 128-byte swizzled tile at `tile`:
  /// start address >> 4 in bits [0,14), leading byte offset 16 (>> 4 = 1,
  /// unused with this swizzle) in [16,30), stride byte offset 1024 (one
  /// 8-row swizzle atom, >> 4 = 64) in [32,46), swizzle mode 1 (128 B) in
  /// [62,64).
  Value descriptor(Value tile) {
    Value addr = toI64(LLVM::PtrToIntOp::create(b, loc, i32, tile));
    Value field = arith::ShRUIOp::create(
        b, loc, arith::AndIOp::create(b, loc, addr, c64(0x3FFFF)), c64(4));
    constexpr int64_t kFixedBits =
        (int64_t(1) << 62) | (int64_t(64) << 32) | (int64_t(1) << 16);
    return arith::OrIOp::create(b, loc, field, c64(kFixedBits));
  }

  /// Expert of output tile row `tileRow` (grouped kernels): a negative value
  /// marks a padding tile, skipped by every warpgroup alike.
  Value expertOf(Value tileRow) {
    Value p = gep(groupIndex, i32, tileRow);
    return LLVM::LoadOp::create(b, loc, i32, p);
  }

  /// Runs `body(stage, phase, mt, nt, expert)` for every output tile this
  /// CTA owns and returns nothing; the ring position is carried across
  /// tiles.
  using TileBody =
      function_ref<std::pair<Value, Value>(Value, Value, Value, Value, Value)>;
  void forEachTile(TileBody body);

  void buildProducer();
  void buildConsumer(Value consumer);
  void storeOutput(Value acc, Value row0, Value col0);

  const GemmKernelSpec &spec;
  LLVM::LLVMStructType accType;

  // Kernel arguments and per-thread values.
  Value tmapA, tmapB, out, scaleA, scaleB, groupIndex, m, n, k, ldd;
  Value tid, smem, tilesM, numTiles, numK, blocksN;
};

} // namespace

void KernelWriter::forEachTile(TileBody body) {
  Value first = NVVM::BlockIdXOp::create(b, loc, i32);
  Value stride = NVVM::GridDimXOp::create(b, loc, i32);
  scf::ForOp::create(
      b, loc, first, numTiles, stride, ValueRange{c32(0), c32(0)},
      [&](OpBuilder &, Location, Value tile, ValueRange ring) {
        Value mt = rem(tile, tilesM);
        Value nt = div(tile, tilesM);
        Value stage = ring[0], phase = ring[1];
        if (!spec.grouped) {
          auto [s, p] = body(stage, phase, mt, nt, c32(0));
          scf::YieldOp::create(b, loc, ValueRange{s, p});
          return;
        }
        Value expert = expertOf(mul(mt, c32(spec.tileM)));
        Value padding = cmp(arith::CmpIPredicate::slt, expert, c32(0));
        auto skip = scf::IfOp::create(
            b, loc, padding,
            [&](OpBuilder &, Location) {
              scf::YieldOp::create(b, loc, ValueRange{stage, phase});
            },
            [&](OpBuilder &, Location) {
              auto [s, p] = body(stage, phase, mt, nt, expert);
              scf::YieldOp::create(b, loc, ValueRange{s, p});
            });
        scf::YieldOp::create(b, loc, skip.getResults());
      });
}

void KernelWriter::buildProducer() {
  int64_t tileBytes = spec.stageBytes();
  Value lane = rem(tid, c32(32));
  Value issuer = cmp(arith::CmpIPredicate::eq, lane, c32(0));
  Value lastRow = sub(m, c32(1)), lastCol = sub(n, c32(1));
  forEachTile([&](Value stage, Value phase, Value mt, Value nt,
                  Value expert) -> std::pair<Value, Value> {
    Value rowA = mul(mt, c32(spec.tileM));
    Value colB = mul(nt, c32(spec.tileN));
    Value rowB = add(mul(expert, n), colB);
    Value block0 = div(colB, c32(128));
    Value blockBase = mul(mul(expert, blocksN), numK);
    auto loop = scf::ForOp::create(
        b, loc, c32(0), numK, c32(1), ValueRange{stage, phase},
        [&](OpBuilder &, Location, Value kb, ValueRange ring) {
          Value s = ring[0], p = ring[1];
          // Wait until the consumers released the slot (parity of the
          // previous round: the first round passes at once).
          waitParity(emptyBarrier(s), arith::XOrIOp::create(b, loc, p, c32(1)));
          Value full = fullBarrier(s);
          scf::IfOp::create(b, loc, issuer, [&](OpBuilder &, Location) {
            NVVM::MBarrierArriveExpectTxOp::create(
                b, loc, Type(), full, c32(tileBytes), NVVM::MemScopeKind::CTA,
                /*relaxed=*/false, Value());
            Value kCoord = mul(kb, c32(spec.tileK));
            // Out-of-bounds rows are zero-filled and still counted in bytes.
            NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
                b, loc, smemA(s), tmapA, ValueRange{kCoord, rowA}, full,
                ValueRange{}, Value(), Value(), NVVM::TMALoadMode::TILE,
                /*isCTAOnly=*/true, nullptr, Value());
            NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
                b, loc, smemB(s), tmapB, ValueRange{kCoord, rowB}, full,
                ValueRange{}, Value(), Value(), NVVM::TMALoadMode::TILE,
                /*isCTAOnly=*/true, nullptr, Value());
            scf::YieldOp::create(b, loc);
          });
          // The stage's scales, copied by the whole warp with cp.async;
          // rows and columns past the end repeat the last one. Each lane's
          // copies arrive on `full` when they land (noinc: they are among
          // the barrier's expected arrivals).
          Value scales = smemScales(s);
          for (int64_t i = 0; i < spec.tileM; i += 32) {
            Value row = add(c32(i), lane);
            Value src = add(mul(kb, m), minU(add(rowA, row), lastRow));
            NVVM::CpAsyncOp::create(b, loc, gep(scales, f32, row),
                                    gep(scaleA, f32, src), 4,
                                    NVVM::LoadCacheModifierKind::CA, Value());
          }
          Value scalesB = gep(scales, f32, c32(spec.tileM));
          if (spec.rhsScaling == RhsScaling::Block128) {
            Value two = cmp(arith::CmpIPredicate::ult, lane, c32(2));
            scf::IfOp::create(b, loc, two, [&](OpBuilder &, Location) {
              Value block = minU(add(block0, lane), sub(blocksN, c32(1)));
              Value src = add(blockBase, add(mul(block, numK), kb));
              NVVM::CpAsyncOp::create(b, loc, gep(scalesB, f32, lane),
                                      gep(scaleB, f32, src), 4,
                                      NVVM::LoadCacheModifierKind::CA, Value());
              scf::YieldOp::create(b, loc);
            });
          } else {
            for (int64_t i = 0; i < spec.tileN; i += 32) {
              Value col = add(c32(i), lane);
              Value inTile =
                  cmp(arith::CmpIPredicate::ult, col, c32(spec.tileN));
              scf::IfOp::create(b, loc, inTile, [&](OpBuilder &, Location) {
                Value src = add(mul(kb, n), minU(add(colB, col), lastCol));
                NVVM::CpAsyncOp::create(
                    b, loc, gep(scalesB, f32, col), gep(scaleB, f32, src), 4,
                    NVVM::LoadCacheModifierKind::CA, Value());
                scf::YieldOp::create(b, loc);
              });
            }
          }
          NVVM::CpAsyncMBarrierArriveOp::create(b, loc, full, /*noinc=*/true);
          auto [ns, np] = advance(s, p);
          scf::YieldOp::create(b, loc, ValueRange{ns, np});
        });
    return {loop.getResult(0), loop.getResult(1)};
  });
}

void KernelWriter::buildConsumer(Value consumer) {
  int64_t fragments = spec.tileN / 8; // n8 column blocks of one wgmma
  int64_t wgmmasPerPromotion = spec.promotion / 32;
  int64_t promotionsPerGroup = spec.tileK / spec.promotion;
  // A 128-column block of B holds the whole tile unless the tile width
  // does not divide 128 (e.g. 112): then a tile can straddle two blocks.
  bool straddles = 128 % spec.tileN != 0;

  Value inGroup = rem(tid, c32(128));
  Value warp = div(inGroup, c32(32));
  Value lane = rem(tid, c32(32));
  // wgmma m64nNk32 f32 accumulator layout: warp w of the warpgroup owns rows
  // 16w..16w+15; lane l holds rows 16w + l/4 and +8, and in each n8 block
  // the columns 2(l%4) and +1: elements 4j..4j+3 of the accumulator are
  // (row, col), (row, col+1), (row+8, col), (row+8, col+1) of block j.
  Value rowInTile =
      add(add(mul(consumer, c32(64)), mul(warp, c32(16))), div(lane, c32(4)));
  Value colInBlock = mul(rem(lane, c32(4)), c32(2));
  Value releaser =
      cmp(arith::CmpIPredicate::eq, lane, c32(0)); // one arrive per warp

  forEachTile([&](Value stage, Value phase, Value mt, Value nt,
                  Value expert) -> std::pair<Value, Value> {
    Value row0 = add(mul(mt, c32(spec.tileM)), rowInTile);
    Value col0 = add(mul(nt, c32(spec.tileN)), colInBlock);
    Value tileCol = mul(nt, c32(spec.tileN));
    Value zero = LLVM::ZeroOp::create(b, loc, accType);
    Value block0 = div(tileCol, c32(128));

    // The scales of the K-group in slot `s`, which the producer copied
    // next to its tiles: sa0, sa1, then B's (one or two blocks for 128x128
    // scaling, two columns per n8 fragment for per-row).
    Value rowInTile1 = add(rowInTile, c32(8));
    auto loadScales = [&](Value s) {
      Value scales = smemScales(s);
      Value scalesB = gep(scales, f32, c32(spec.tileM));
      SmallVector<Value> raw = {load(f32, scales, rowInTile),
                                load(f32, scales, rowInTile1)};
      if (spec.rhsScaling == RhsScaling::Block128) {
        raw.push_back(load(f32, scalesB, c32(0)));
        if (straddles)
          raw.push_back(load(f32, scalesB, c32(1)));
        return raw;
      }
      for (int64_t j = 0; j < fragments; ++j)
        for (int64_t q = 0; q < 2; ++q)
          raw.push_back(load(f32, scalesB, add(colInBlock, c32(8 * j + q))));
      return raw;
    };
    // The scale products of a K-group: `prepare` runs once per group,
    // `scaleOf(i)` right where accumulator element i is promoted, so that
    // per-column products need not all be held in registers at once.
    struct GroupScales {
      SmallVector<Value> rowProducts; // 128x128 scaling: per row half
    };
    auto prepareScales = [&](ValueRange raw) {
      GroupScales g;
      if (spec.rhsScaling != RhsScaling::Block128)
        return g;
      Value sa0 = raw[0], sa1 = raw[1];
      if (!straddles) {
        g.rowProducts = {arith::MulFOp::create(b, loc, sa0, raw[2]),
                         arith::MulFOp::create(b, loc, sa1, raw[2])};
        return g;
      }
      Value sb0 = raw[2], sb1 = raw[3];
      Value boundary = mul(add(block0, c32(1)), c32(128));
      Value s00 = arith::MulFOp::create(b, loc, sa0, sb0);
      Value s01 = arith::MulFOp::create(b, loc, sa0, sb1);
      Value s10 = arith::MulFOp::create(b, loc, sa1, sb0);
      Value s11 = arith::MulFOp::create(b, loc, sa1, sb1);
      for (int64_t j = 0; j < fragments; ++j) {
        Value second =
            cmp(arith::CmpIPredicate::uge, add(tileCol, c32(8 * j)), boundary);
        g.rowProducts.push_back(
            arith::SelectOp::create(b, loc, second, s01, s00));
        g.rowProducts.push_back(
            arith::SelectOp::create(b, loc, second, s11, s10));
      }
      return g;
    };
    auto scaleOf = [&](const GroupScales &g, ValueRange raw, int64_t i) {
      int64_t j = i / 4, half = (i / 2) % 2, q = i % 2;
      if (spec.rhsScaling == RhsScaling::Block128)
        return straddles ? g.rowProducts[2 * j + half] : g.rowProducts[half];
      return Value(
          arith::MulFOp::create(b, loc, raw[half], raw[2 + 2 * j + q]));
    };

    // One promotion interval's wgmmas on slot `s`, accumulating from zero
    // into a fresh scratch accumulator; committed as one group.
    auto issueInterval = [&](Value s, int64_t pr) {
      Value descA = descriptor(
          gep(smemA(s), b.getI8Type(), mul(consumer, c32(64 * 128))));
      Value descB = descriptor(smemB(s));
      NVVM::WgmmaFenceAlignedOp::create(b, loc);
      Value partial = LLVM::PoisonOp::create(b, loc, accType);
      for (int64_t w = 0; w < wgmmasPerPromotion; ++w) {
        // Each k32 step is 32 bytes further along the swizzled row: +2 in
        // the descriptor's address field.
        Value step = c64(2 * (pr * wgmmasPerPromotion + w));
        partial = NVVM::WgmmaMmaAsyncOp::create(
            b, loc, accType, partial, add(descA, step), add(descB, step),
            NVVM::MMAShapeAttr::get(ctx, 64, spec.tileN, 32),
            NVVM::WGMMATypes::e4m3, NVVM::WGMMATypes::e4m3,
            NVVM::WGMMATypes::f32,
            w == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one,
            NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one,
            NVVM::MMALayout::row, NVVM::MMALayout::col, nullptr);
      }
      NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
      return partial;
    };

    // Slot `s` is read: let the producer refill it.
    auto release = [&](Value s) {
      scf::IfOp::create(b, loc, releaser, [&](OpBuilder &, Location) {
        NVVM::MBarrierArriveOp::create(b, loc, Type(), emptyBarrier(s),
                                       Value());
        scf::YieldOp::create(b, loc);
      });
    };
    // Promotion: acc += partial * (scaleA * scaleB) as one FP32 fused
    // multiply-add per element, the CPU reference's arithmetic. Every value
    // read from the scratch accumulator and every sum written is pinned (see
    // `pin`), so LLVM keeps the promotion after the wait that completes
    // `partial` and before the next wgmma issue.
    auto promote = [&](Value acc, Value partial, const GroupScales &g,
                       ValueRange scales) {
      for (int64_t i = 0; i < spec.tileN / 2; ++i) {
        Value pv = pin(LLVM::ExtractValueOp::create(b, loc, partial, i));
        Value av = LLVM::ExtractValueOp::create(b, loc, acc, i);
        Value sum = LLVM::FMAOp::create(b, loc, pv, scaleOf(g, scales, i), av);
        acc = LLVM::InsertValueOp::create(b, loc, acc, pin(sum), i);
      }
      return acc;
    };

    // The K loop runs over promotion intervals, each issued one step ahead
    // of its promotion. By default interval c is waited for and promoted,
    // then c + 1 is issued and runs while the loop moves on (and while the
    // other consumer promotes). The overlapped schedule issues c + 1 first,
    // into a second scratch accumulator, so that this warpgroup's tensor
    // cores stay busy through its own promotions.
    //
    // With an interval in flight across the next issue (the overlapped
    // schedule), the shape of the loop decides whether ptxas keeps the
    // wgmmas asynchronous: an in-flight scratch accumulator that LLVM copies
    // at a back edge, or a next interval issued under a branch of the loop
    // body, makes it serialize every wgmma of the kernel (C7514). The
    // default schedule issues under a branch too, but with nothing in
    // flight.

    // The K-group in flight: `pending` is the first interval of the group in
    // slot `stage`, already issued.
    struct GroupState {
      Value stage, phase, acc, pending;
    };
    auto pack = [](const GroupState &g) {
      return SmallVector<Value>{g.stage, g.phase, g.acc, g.pending};
    };
    auto unpack = [](ValueRange values) {
      return GroupState{values[0], values[1], values[2], values[3]};
    };

    if (spec.overlap) {
      // One K-group: each interval's successor is issued (the next group's
      // first once its tiles are in, unless this is the `last` group), then
      // the interval is waited for with one group left in flight, and
      // promoted.
      auto overlappedGroup = [&](const GroupState &in, bool last) {
        SmallVector<Value> scales = loadScales(in.stage);
        GroupScales groupScales = prepareScales(scales);
        GroupState out;
        std::tie(out.stage, out.phase) = advance(in.stage, in.phase);
        Value acc = in.acc, pending = in.pending;
        for (int64_t pr = 0; pr < promotionsPerGroup; ++pr) {
          bool lastInGroup = pr + 1 == promotionsPerGroup;
          Value next;
          if (!lastInGroup) {
            next = issueInterval(in.stage, pr + 1);
          } else if (!last) {
            waitParity(fullBarrier(out.stage), out.phase);
            next = issueInterval(out.stage, 0);
          }
          NVVM::WgmmaWaitGroupSyncOp::create(b, loc, next ? 1 : 0);
          if (lastInGroup)
            release(in.stage);
          acc = promote(acc, pending, groupScales, scales);
          pending = next;
        }
        out.acc = acc;
        out.pending = pending;
        return out;
      };
      // Every K-group but the last issues its successor unconditionally,
      // and the loop takes two groups per iteration: with one, ptxas
      // serializes the wgmmas whatever the interval count per group (found
      // by trying; two or three per iteration assemble cleanly). The one or
      // two groups left are peeled after the loop.
      waitParity(fullBarrier(stage), phase);
      GroupState init{stage, phase, zero, issueInterval(stage, 0)};
      Value rest = sub(numK, c32(1));
      auto loop = scf::ForOp::create(
          b, loc, c32(0), div(rest, c32(2)), c32(1), pack(init),
          [&](OpBuilder &, Location, Value, ValueRange iter) {
            GroupState g = overlappedGroup(unpack(iter), /*last=*/false);
            scf::YieldOp::create(b, loc,
                                 pack(overlappedGroup(g, /*last=*/false)));
          });
      GroupState left = unpack(loop.getResults());
      auto finish = [&](const GroupState &g) {
        GroupState done = overlappedGroup(g, /*last=*/true);
        scf::YieldOp::create(b, loc,
                             ValueRange{done.acc, done.stage, done.phase});
      };
      Value odd = cmp(arith::CmpIPredicate::ne, rem(rest, c32(2)), c32(0));
      auto tail = scf::IfOp::create(b, loc, TypeRange{accType, i32, i32}, odd,
                                    /*withElse=*/true);
      b.setInsertionPointToStart(&tail.getThenRegion().front());
      finish(overlappedGroup(left, /*last=*/false));
      b.setInsertionPointToStart(&tail.getElseRegion().front());
      finish(left);
      b.setInsertionPointAfter(tail);
      storeOutput(tail.getResult(0), row0, col0);
      return {tail.getResult(1), tail.getResult(2)};
    }

    // One K-group: `in.pending` is its first interval, already issued, so
    // its slot (tiles and scales) is full. Returns the new accumulator and
    // the next group's first interval (issued when there is a next group,
    // else poison).
    auto emitGroup = [&](Value kb, const GroupState &in) {
      GroupState out;
      // Read before the slot is released.
      SmallVector<Value> scales = loadScales(in.stage);
      GroupScales groupScales = prepareScales(scales);
      std::tie(out.stage, out.phase) = advance(in.stage, in.phase);
      Value acc = in.acc, pending = in.pending;
      for (int64_t pr = 0; pr < promotionsPerGroup; ++pr) {
        bool lastInGroup = pr + 1 == promotionsPerGroup;
        NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
        if (lastInGroup)
          release(in.stage);
        acc = promote(acc, pending, groupScales, scales);
        if (!lastInGroup) {
          pending = issueInterval(in.stage, pr + 1);
          continue;
        }
        // The next group's first interval, once its tiles are in.
        Value hasNext = cmp(arith::CmpIPredicate::ult, add(kb, c32(1)), numK);
        auto ifNext = scf::IfOp::create(b, loc, TypeRange{accType}, hasNext,
                                        /*withElse=*/true);
        b.setInsertionPointToStart(&ifNext.getThenRegion().front());
        waitParity(fullBarrier(out.stage), out.phase);
        scf::YieldOp::create(b, loc, issueInterval(out.stage, 0));
        b.setInsertionPointToStart(&ifNext.getElseRegion().front());
        scf::YieldOp::create(b, loc,
                             Value(LLVM::PoisonOp::create(b, loc, accType)));
        b.setInsertionPointAfter(ifNext);
        pending = ifNext.getResult(0);
      }
      out.acc = acc;
      out.pending = pending;
      return out;
    };
    waitParity(fullBarrier(stage), phase);
    GroupState init{stage, phase, zero, issueInterval(stage, 0)};
    auto loop = scf::ForOp::create(
        b, loc, c32(0), numK, c32(1), pack(init),
        [&](OpBuilder &, Location, Value kb, ValueRange iter) {
          scf::YieldOp::create(b, loc, pack(emitGroup(kb, unpack(iter))));
        });
    GroupState last = unpack(loop.getResults());
    Value acc = last.acc;
    Value ringStage = last.stage, ringPhase = last.phase;
    // Nothing is in flight here, but ptxas cannot tell that the last group
    // issued no next interval; without this wait it injects one of its own
    // before the epilogue reads the accumulator (C7517).
    NVVM::WgmmaWaitGroupSyncOp::create(b, loc, 0);
    storeOutput(acc, row0, col0);
    return {ringStage, ringPhase};
  });
}

void KernelWriter::storeOutput(Value acc, Value row0, Value col0) {
  Type elem = spec.outputBF16 ? bf16 : f32;
  auto pairType = VectorType::get({2}, elem);
  Value lddWide = toI64(ldd);
  for (int64_t j = 0; j < spec.tileN / 8; ++j) {
    for (int64_t half = 0; half < 2; ++half) {
      Value row = half ? add(row0, c32(8)) : row0;
      Value col = add(col0, c32(8 * j));
      Value rowOk = cmp(arith::CmpIPredicate::ult, row, m);
      Value pairOk = arith::AndIOp::create(
          b, loc, rowOk, cmp(arith::CmpIPredicate::ult, add(col, c32(1)), n));
      Value oneOk = arith::AndIOp::create(
          b, loc, rowOk, cmp(arith::CmpIPredicate::ult, col, n));
      SmallVector<Value, 2> values;
      for (int64_t q = 0; q < 2; ++q) {
        Value v =
            LLVM::ExtractValueOp::create(b, loc, acc, 4 * j + 2 * half + q);
        if (spec.outputBF16)
          v = arith::TruncFOp::create(b, loc, bf16, v);
        values.push_back(v);
      }
      Value index = add(mul(toI64(row), lddWide), toI64(col));
      Value address = gep(out, elem, index);
      scf::IfOp::create(
          b, loc, pairOk,
          [&](OpBuilder &, Location) {
            Value pair = LLVM::PoisonOp::create(b, loc, pairType);
            for (int64_t q = 0; q < 2; ++q)
              pair = LLVM::InsertElementOp::create(b, loc, pair, values[q],
                                                   c32(q));
            LLVM::StoreOp::create(b, loc, pair, address);
            scf::YieldOp::create(b, loc);
          },
          [&](OpBuilder &, Location) {
            // The last column of an odd N.
            scf::IfOp::create(b, loc, oneOk, [&](OpBuilder &, Location) {
              LLVM::StoreOp::create(b, loc, values[0], address);
              scf::YieldOp::create(b, loc);
            });
            scf::YieldOp::create(b, loc);
          });
    }
  }
}

gpu::GPUFuncOp KernelWriter::build() {
  SmallVector<Type> args = {ptrGeneric, ptrGeneric, ptrGlobal, ptrGlobal,
                            ptrGlobal,  ptrGlobal,  i32,       i32,
                            i32,        i32};
  OpBuilder::InsertionGuard guard(b);
  auto func = createKernel(spec.name(), args, spec.numThreads());
  // One CTA per SM: with it, ptxas knows the register budget at entry and
  // honours setmaxnreg (it ignores it otherwise, warning C7508).
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                b.getI32IntegerAttr(1));
  func->setAttr("octet_tq.shared_memory_bytes",
                b.getI64IntegerAttr(spec.sharedMemoryBytes()));
  Block &entry = func.getBody().front();
  tmapA = entry.getArgument(0);
  tmapB = entry.getArgument(1);
  out = entry.getArgument(2);
  scaleA = entry.getArgument(3);
  scaleB = entry.getArgument(4);
  groupIndex = entry.getArgument(5);
  m = entry.getArgument(6);
  n = entry.getArgument(7);
  k = entry.getArgument(8);
  ldd = entry.getArgument(9);

  tid = NVVM::ThreadIdXOp::create(b, loc, i32);
  // 1024-byte alignment is what the 128-byte swizzle needs; the dynamic
  // window starts there.
  smem = dynamicSharedMemory(kSharedMemorySymbol, 1024);
  tilesM = ceilDiv(m, spec.tileM);
  numTiles = mul(tilesM, ceilDiv(n, spec.tileN));
  numK = div(k, c32(spec.tileK));
  blocksN = ceilDiv(n, 128);

  // One thread initialises the barriers; everyone waits for it.
  Value first = cmp(arith::CmpIPredicate::eq, tid, c32(0));
  scf::IfOp::create(b, loc, first, [&](OpBuilder &, Location) {
    for (int64_t s = 0; s < spec.stages; ++s) {
      // The issuer's expect-tx arrival and one cp.async arrival per lane
      // of the producer warp.
      NVVM::MBarrierInitOp::create(b, loc, fullBarrier(c32(s)), c32(1 + 32),
                                   Value());
      NVVM::MBarrierInitOp::create(b, loc, emptyBarrier(c32(s)),
                                   c32(4 * spec.numConsumers()), Value());
    }
    NVVM::FenceMbarrierInitOp::create(b, loc);
    scf::YieldOp::create(b, loc);
  });
  NVVM::Barrier0Op::create(b, loc);

  Value warpgroup = div(tid, c32(128));
  Value isProducer = cmp(arith::CmpIPredicate::eq, warpgroup, c32(0));
  scf::IfOp::create(
      b, loc, isProducer,
      [&](OpBuilder &, Location) {
        NVVM::SetMaxRegisterOp::create(b, loc, kProducerRegisters,
                                       NVVM::SetMaxRegisterAction::decrease);
        Value firstWarp = cmp(arith::CmpIPredicate::ult, tid, c32(32));
        scf::IfOp::create(b, loc, firstWarp, [&](OpBuilder &, Location) {
          buildProducer();
          scf::YieldOp::create(b, loc);
        });
        scf::YieldOp::create(b, loc);
      },
      [&](OpBuilder &, Location) {
        NVVM::SetMaxRegisterOp::create(b, loc, kConsumerRegisters,
                                       NVVM::SetMaxRegisterAction::increase);
        buildConsumer(sub(warpgroup, c32(1)));
        scf::YieldOp::create(b, loc);
      });
  gpu::ReturnOp::create(b, loc);
  return func;
}

gpu::GPUFuncOp octet::cuda::buildGemmKernel(OpBuilder &builder, Location loc,
                                            const GemmKernelSpec &spec) {
  return KernelWriter(builder, loc, spec).build();
}
