//! `__multi3`, 128-bit multiplication, done by the C compiler.
//!
//! WebAssembly has no 64 × 64 → 128-bit multiplication, so compilers call their runtime
//! library's `__multi3` for every `i128` product and for 64-bit overflow checks (Rust's
//! `checked_mul` on `i64`): a dozen multiplications, shifts and carries on 32-bit halves, the
//! product returned through linear memory. x86-64 multiplies in one instruction. [`find`]
//! recognises the function by its exact body, in the two implementations guests link (Rust's
//! compiler-builtins and LLVM's compiler-rt, as their wasm32 builds are), and [`replace`] is
//! what [`crate::fuel::instrument`] puts in its place: a call of the import
//! [`crate::fuel::IMPORT_MODULE`]`.`[`MUL128_FUNC`], which the generated C defines with `unsigned
//! __int128` (and the compiler inlines), then the original's two stores in the original's
//! order, so that a store out of bounds traps with the same half written before it.
//!
//! Anything else, a `__multi3` from another compiler included, is translated as it is.

use wasm_encoder::{Function, Instruction, MemArg, MemArgTarget, ValType};

/// The imported function `(a_lo, a_hi, b_lo, b_hi: i64) -> (lo, hi: i64)`: the low and high
/// halves of the 128-bit product `a × b`.
pub const MUL128_FUNC: &str = "mul128";

/// Which half an implementation of `__multi3` stores first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The low half, at the result's address (Rust's compiler-builtins).
    LowFirst,
    /// The high half, 8 bytes above it (LLVM's compiler-rt).
    HighFirst,
}

/// The body (locals and code) of compiler-builtins' `__multi3` as rustc builds it for wasm32,
/// `(func (param $r i32) (param $a_lo i64) (param $a_hi i64) (param $b_lo i64) (param $b_hi
/// i64))`: the schoolbook product of the low halves in 32-bit quarters, plus the cross terms
/// `a_hi × b_lo + a_lo × b_hi`, stored low half first.
const COMPILER_BUILTINS: &[u8] = &[
    1, 6, 126, 32, 0, 32, 3, 66, 255, 255, 255, 255, 15, 131, 34, 5, 32, 1, 66, 255, 255, 255, 255,
    15, 131, 34, 6, 126, 34, 7, 32, 3, 66, 32, 136, 34, 8, 32, 6, 126, 34, 6, 32, 5, 32, 1, 66, 32,
    136, 34, 9, 126, 124, 34, 5, 66, 32, 134, 124, 34, 10, 55, 3, 0, 32, 0, 32, 8, 32, 9, 126, 32,
    5, 32, 6, 84, 173, 66, 32, 134, 32, 5, 66, 32, 136, 132, 124, 32, 10, 32, 7, 84, 173, 124, 32,
    4, 32, 1, 126, 32, 3, 32, 2, 126, 124, 124, 55, 3, 8, 11,
];

/// The body of compiler-rt's `__multi3` (`__mulddi3` inlined) as clang builds it for wasm32,
/// same signature: high half first.
const COMPILER_RT: &[u8] = &[
    1, 1, 126, 32, 0, 32, 4, 32, 1, 126, 32, 2, 32, 3, 126, 124, 32, 3, 66, 32, 136, 34, 4, 32, 1,
    66, 32, 136, 34, 2, 126, 124, 32, 3, 66, 255, 255, 255, 255, 15, 131, 34, 3, 32, 1, 66, 255,
    255, 255, 255, 15, 131, 34, 1, 126, 34, 5, 66, 32, 136, 32, 3, 32, 2, 126, 124, 34, 3, 66, 32,
    136, 124, 32, 3, 66, 255, 255, 255, 255, 15, 131, 32, 4, 32, 1, 126, 124, 34, 3, 66, 32, 136,
    124, 55, 3, 8, 32, 0, 32, 3, 66, 32, 134, 32, 5, 66, 255, 255, 255, 255, 15, 131, 132, 55, 3,
    0, 11,
];

/// The parameters of `__multi3`: the result's address, then `a` and `b`, low half first.
const PARAMS: [wasmparser::ValType; 5] = [
    wasmparser::ValType::I32,
    wasmparser::ValType::I64,
    wasmparser::ValType::I64,
    wasmparser::ValType::I64,
    wasmparser::ValType::I64,
];

/// Whether `body`, the bytes of a function body of type `params -> results`, is one of the
/// known `__multi3`s, and which.
pub fn find(
    params: &[wasmparser::ValType],
    results: &[wasmparser::ValType],
    body: &[u8],
) -> Option<Order> {
    if params != PARAMS || !results.is_empty() {
        return None;
    }
    match body {
        COMPILER_BUILTINS => Some(Order::LowFirst),
        COMPILER_RT => Some(Order::HighFirst),
        _ => None,
    }
}

/// A function with the locals [`store_product`] uses, for the body replacing a `__multi3`.
pub fn function() -> Function {
    Function::new([(2, ValType::I64)])
}

/// Appends to `f` (made by [`function`]) the code of a `__multi3` that stores in `order`:
/// a call of `mul128`, the function index of the import [`MUL128_FUNC`], and the two stores.
pub fn store_product(f: &mut Function, order: Order, mul128: u32) {
    const LO: u32 = 5;
    const HI: u32 = 6;
    for param in 1..=4 {
        f.instruction(&Instruction::LocalGet(param));
    }
    f.instruction(&Instruction::Call(mul128));
    f.instruction(&Instruction::LocalSet(HI));
    f.instruction(&Instruction::LocalSet(LO));
    let halves = match order {
        Order::LowFirst => [(LO, 0), (HI, 8)],
        Order::HighFirst => [(HI, 8), (LO, 0)],
    };
    for (half, offset) in halves {
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::LocalGet(half));
        f.instruction(&Instruction::I64Store(MemArg {
            offset,
            align: 3,
            target: MemArgTarget::Memory(0),
            ordering: None,
        }));
    }
    f.instruction(&Instruction::End);
}
