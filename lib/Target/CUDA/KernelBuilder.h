//===- KernelBuilder.h - Helpers for writing NVVM kernels in C++ -*- C++ -*-===//
//
// The idioms the CUDA target's kernel generators share: i32/i64 constants
// and arithmetic, typed global/shared memory access, and the gpu.func and
// dynamic shared memory boilerplate. Private to lib/Target/CUDA.
//
//===----------------------------------------------------------------------===//

#ifndef OCTET_LIB_TARGET_CUDA_KERNELBUILDER_H
#define OCTET_LIB_TARGET_CUDA_KERNELBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

namespace octet::cuda {

class KernelBuilder {
public:
  KernelBuilder(mlir::OpBuilder &b, mlir::Location loc)
      : b(b), loc(loc), ctx(b.getContext()) {
    i1 = b.getI1Type();
    i8 = b.getI8Type();
    i16 = b.getI16Type();
    i32 = b.getI32Type();
    i64 = b.getI64Type();
    f32 = b.getF32Type();
    bf16 = b.getBF16Type();
    ptrGeneric = mlir::LLVM::LLVMPointerType::get(ctx);
    ptrGlobal = mlir::LLVM::LLVMPointerType::get(ctx, 1);
    ptrShared = mlir::LLVM::LLVMPointerType::get(ctx, 3);
  }

protected:
  using Value = mlir::Value;
  using Pred = mlir::arith::CmpIPredicate;

  // Constants and integer arithmetic (unsigned where it matters).
  Value c32(int64_t v) {
    return mlir::arith::ConstantIntOp::create(b, loc, v, 32);
  }
  Value c64(int64_t v) {
    return mlir::arith::ConstantIntOp::create(b, loc, v, 64);
  }
  Value cf32(double v) {
    return mlir::arith::ConstantOp::create(b, loc, b.getF32FloatAttr(float(v)));
  }
  Value add(Value x, Value y) {
    return mlir::arith::AddIOp::create(b, loc, x, y);
  }
  Value sub(Value x, Value y) {
    return mlir::arith::SubIOp::create(b, loc, x, y);
  }
  Value mul(Value x, Value y) {
    return mlir::arith::MulIOp::create(b, loc, x, y);
  }
  Value div(Value x, Value y) {
    return mlir::arith::DivUIOp::create(b, loc, x, y);
  }
  Value rem(Value x, Value y) {
    return mlir::arith::RemUIOp::create(b, loc, x, y);
  }
  Value minU(Value x, Value y) {
    return mlir::arith::MinUIOp::create(b, loc, x, y);
  }
  Value cmp(Pred p, Value x, Value y) {
    return mlir::arith::CmpIOp::create(b, loc, p, x, y);
  }
  Value ceilDiv(Value x, int64_t d) { return div(add(x, c32(d - 1)), c32(d)); }
  Value toI64(Value v) { return mlir::arith::ExtUIOp::create(b, loc, i64, v); }
  Value select(Value c, Value x, Value y) {
    return mlir::arith::SelectOp::create(b, loc, c, x, y);
  }

  // Memory.
  Value gep(Value base, mlir::Type elem, Value index) {
    return mlir::LLVM::GEPOp::create(b, loc, base.getType(), elem, base,
                                     llvm::ArrayRef<mlir::LLVM::GEPArg>{index});
  }
  Value load(mlir::Type type, Value base, Value index) {
    return mlir::LLVM::LoadOp::create(b, loc, type, gep(base, type, index));
  }
  void store(Value value, Value base, Value index) {
    mlir::LLVM::StoreOp::create(b, loc, value,
                                gep(base, value.getType(), index));
  }

  /// `gpu.func @name(args) kernel` with `threads` as its maximum block size;
  /// the builder is left at the start of its body.
  mlir::gpu::GPUFuncOp createKernel(llvm::StringRef name,
                                    llvm::ArrayRef<mlir::Type> args,
                                    int64_t threads) {
    auto func = mlir::gpu::GPUFuncOp::create(b, loc, name,
                                             b.getFunctionType(args, {}));
    func->setAttr(mlir::gpu::GPUDialect::getKernelFuncAttrName(),
                  b.getUnitAttr());
    func->setAttr(mlir::NVVM::NVVMDialect::getMaxntidAttrName(),
                  b.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));
    b.setInsertionPointToStart(&func.getBody().front());
    return func;
  }

  /// The address of the gpu.module's dynamic shared memory, `symbol`
  /// (created on first use, aligned as `alignment`).
  Value dynamicSharedMemory(llvm::StringRef symbol, int64_t alignment);

  mlir::OpBuilder &b;
  mlir::Location loc;
  mlir::MLIRContext *ctx;
  mlir::Type i1, i8, i16, i32, i64, f32, bf16, ptrGeneric, ptrGlobal,
      ptrShared;
};

inline mlir::Value KernelBuilder::dynamicSharedMemory(llvm::StringRef symbol,
                                                      int64_t alignment) {
  auto gpuModule =
      b.getInsertionBlock()->getParentOp()->getParentOfType<mlir::gpu::GPUModuleOp>();
  assert(gpuModule && "kernels are built inside a gpu.module");
  if (!gpuModule.lookupSymbol(symbol)) {
    mlir::OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(gpuModule.getBody());
    mlir::LLVM::GlobalOp::create(
        b, loc, mlir::LLVM::LLVMArrayType::get(i8, 0), /*isConstant=*/false,
        mlir::LLVM::Linkage::External, symbol, mlir::Attribute(), alignment,
        /*addrSpace=*/3);
  }
  return mlir::LLVM::AddressOfOp::create(b, loc, ptrShared, symbol);
}

/// The generated kernels of a module: `gpu.module @octet_kernels`, created
/// on first use (marking the module a GPU container); each kernel is built
/// once per name and the ops it computes point at it with `octet_tq.kernel`.
class KernelCollection {
public:
  static constexpr llvm::StringLiteral kModuleName = "octet_kernels";

  explicit KernelCollection(mlir::ModuleOp module) : module(module) {}

  /// Builds kernel `name` with `build` (at the end of @octet_kernels) unless
  /// it exists, and records it on `op`.
  void use(mlir::Operation *op, llvm::StringRef name,
           llvm::function_ref<void(mlir::OpBuilder &)> build) {
    mlir::MLIRContext *ctx = module.getContext();
    mlir::OpBuilder b(ctx);
    auto kernels = module.lookupSymbol<mlir::gpu::GPUModuleOp>(kModuleName);
    if (!kernels) {
      b.setInsertionPointToEnd(module.getBody());
      kernels = mlir::gpu::GPUModuleOp::create(b, module.getLoc(), kModuleName);
      module->setAttr(mlir::gpu::GPUDialect::getContainerModuleAttrName(),
                      b.getUnitAttr());
    }
    if (!kernels.lookupSymbol(name)) {
      b.setInsertionPointToEnd(kernels.getBody());
      build(b);
    }
    op->setAttr("octet_tq.kernel",
                mlir::SymbolRefAttr::get(
                    ctx, kModuleName, {mlir::FlatSymbolRefAttr::get(ctx, name)}));
  }

private:
  mlir::ModuleOp module;
};

} // namespace octet::cuda

#endif // OCTET_LIB_TARGET_CUDA_KERNELBUILDER_H
