//! Fuel metering inserted into the Wasm itself.
//!
//! Native code has no interpreter loop to count instructions in, so the module counts for
//! itself. [`instrument`] adds two imports from the module [`IMPORT_MODULE`]:
//!
//! - the mutable `i64` global [`FUEL_GLOBAL`]: the fuel left in the current slice;
//! - the function [`REFUEL_FUNC`] (`() -> ()`), called when that counter drops below zero.
//!
//! Every function entry and every loop header subtracts the cost of the code that follows it
//! (its operators up to the next such point, at least 1) and calls `refuel` if the counter went
//! negative. Every backward branch targets a loop header and every call enters a function, so
//! no execution runs unmetered for longer than one function body: a guest in an endless loop
//! or an endless recursion reaches `refuel` again and again, where the host reschedules, checks
//! for fatal signals and either refills the counter for another slice or traps.
//!
//! The instrumentation is stack-neutral and uses no local of the function, so every operator
//! of the original module keeps its meaning; only function and global indices shift (the
//! imports come first in their index spaces) and are renumbered throughout, names included.

use core::fmt;
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    CodeSection, EntityType, Function, GlobalType, ImportSection, Instruction, Module, SectionId,
    TypeSection, ValType,
};
use wasmparser::{FunctionBody, Operator, Parser, Payload, TypeRef, Validator, WasmFeatures};

/// The import module of the fuel counter and the refuel function; a guest may not import from
/// it itself.
pub const IMPORT_MODULE: &str = "wasm_native";
/// The imported mutable `i64` global holding the fuel left in the current slice.
pub const FUEL_GLOBAL: &str = "fuel";
/// The imported function `() -> ()` called when the counter drops below zero.
pub const REFUEL_FUNC: &str = "refuel";

/// The Wasm features a native module may use: what `wasm2c` translates and the kernel's
/// runtime supports (no SIMD, threads, exceptions, tail calls, GC, multiple memories or 64-bit
/// memories).
pub fn features() -> WasmFeatures {
    WasmFeatures::MVP
        | WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::REFERENCE_TYPES
}

/// Why a module cannot be instrumented.
#[derive(Debug)]
pub enum Error {
    /// The module is not valid Wasm with the [`features`] of the native tier.
    Invalid(wasmparser::BinaryReaderError),
    /// The module imports from [`IMPORT_MODULE`] itself.
    ReservedImport(String),
    /// Re-encoding failed.
    Encode(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(e) => write!(f, "invalid module: {e}"),
            Error::ReservedImport(name) => write!(
                f,
                "the module imports {IMPORT_MODULE}.{name}: the import module {IMPORT_MODULE} is reserved for fuel metering"
            ),
            Error::Encode(e) => write!(f, "cannot re-encode the module: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wasmparser::BinaryReaderError> for Error {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Error::Invalid(e)
    }
}

impl<E: fmt::Display> From<reencode::Error<E>> for Error {
    fn from(e: reencode::Error<E>) -> Self {
        Error::Encode(e.to_string())
    }
}

/// What the instrumentation needs to know of the original module.
#[derive(Debug, Default)]
struct Counts {
    /// Types defined (the refuel function's type is appended after them).
    types: u32,
    /// Functions imported (the refuel function is imported after them).
    imported_funcs: u32,
    /// Globals imported (the fuel global is imported after them).
    imported_globals: u32,
}

impl Counts {
    fn of(wasm: &[u8]) -> Result<Self, Error> {
        let mut counts = Counts::default();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(types) => {
                    for group in types {
                        let n = group?.types().len();
                        counts.types += u32::try_from(n).unwrap_or(u32::MAX);
                    }
                }
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        let import = import?;
                        if import.module == IMPORT_MODULE {
                            return Err(Error::ReservedImport(import.name.to_string()));
                        }
                        match import.ty {
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => counts.imported_funcs += 1,
                            TypeRef::Global(_) => counts.imported_globals += 1,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(counts)
    }
}

/// Validates `wasm` with the native tier's [`features`] and returns it with fuel metering
/// inserted (see the module documentation).
///
/// # Errors
///
/// [`Error::Invalid`] for a module that does not validate, [`Error::ReservedImport`] for one
/// that imports from [`IMPORT_MODULE`].
pub fn instrument(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    Validator::new_with_features(features()).validate_all(wasm)?;
    let counts = Counts::of(wasm)?;
    let mut meter = Meter {
        counts,
        types_done: false,
        imports_done: false,
    };
    let mut module = Module::new();
    meter.parse_core_module(&mut module, Parser::new(0), wasm)?;
    let out = module.finish();
    // The result must be valid: anything else is a bug here, not in the guest.
    Validator::new_with_features(features())
        .validate_all(&out)
        .map_err(|e| Error::Encode(format!("the instrumented module does not validate: {e}")))?;
    Ok(out)
}

/// The re-encoder inserting the metering.
struct Meter {
    counts: Counts,
    /// The refuel function's type has been added.
    types_done: bool,
    /// The two imports have been added.
    imports_done: bool,
}

impl Meter {
    /// Index of the refuel function's type.
    fn refuel_type(&self) -> u32 {
        self.counts.types
    }

    /// Index of the refuel function.
    fn refuel_func(&self) -> u32 {
        self.counts.imported_funcs
    }

    /// Index of the fuel global.
    fn fuel_global(&self) -> u32 {
        self.counts.imported_globals
    }

    fn add_refuel_type(&mut self, types: &mut TypeSection) {
        types.ty().function([], []);
        self.types_done = true;
    }

    fn add_imports(&mut self, imports: &mut ImportSection) {
        imports.import(
            IMPORT_MODULE,
            FUEL_GLOBAL,
            EntityType::Global(GlobalType {
                val_type: ValType::I64,
                mutable: true,
                shared: false,
            }),
        );
        imports.import(
            IMPORT_MODULE,
            REFUEL_FUNC,
            EntityType::Function(self.refuel_type()),
        );
        self.imports_done = true;
    }

    /// Emits the metering of a region costing `cost`.
    fn charge(&self, f: &mut Function, cost: u32) {
        let fuel = self.fuel_global();
        f.instruction(&Instruction::GlobalGet(fuel));
        f.instruction(&Instruction::I64Const(i64::from(cost.max(1))));
        f.instruction(&Instruction::I64Sub);
        f.instruction(&Instruction::GlobalSet(fuel));
        f.instruction(&Instruction::GlobalGet(fuel));
        f.instruction(&Instruction::I64Const(0));
        f.instruction(&Instruction::I64LtS);
        f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
        f.instruction(&Instruction::Call(self.refuel_func()));
        f.instruction(&Instruction::End);
    }
}

/// Cost of the region starting at `ops[start]`: its operators up to the next loop header.
fn region_cost(ops: &[Operator<'_>], start: usize) -> u32 {
    let n = ops[start..]
        .iter()
        .position(|op| matches!(op, Operator::Loop { .. }))
        .map_or(ops.len() - start, |i| i + 1);
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Reencode for Meter {
    type Error = core::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(if func >= self.counts.imported_funcs {
            func + 1
        } else {
            func
        })
    }

    fn global_index(&mut self, global: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(if global >= self.counts.imported_globals {
            global + 1
        } else {
            global
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.add_refuel_type(types);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    /// Adds the type and import sections where the module has none.
    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        if !self.types_done && before != Some(SectionId::Type) {
            let mut types = TypeSection::new();
            self.add_refuel_type(&mut types);
            module.section(&types);
        }
        if !self.imports_done
            && before != Some(SectionId::Type)
            && before != Some(SectionId::Import)
        {
            let mut imports = ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let mut f = self.new_function_with_parsed_locals(&func)?;
        let mut reader = func.get_operators_reader()?;
        let mut ops = Vec::new();
        while !reader.eof() {
            ops.push(reader.read()?);
        }
        self.charge(&mut f, region_cost(&ops, 0));
        for (i, op) in ops.iter().enumerate() {
            let is_loop = matches!(op, Operator::Loop { .. });
            f.instruction(&self.instruction(op.clone())?);
            if is_loop {
                self.charge(&mut f, region_cost(&ops, i + 1));
            }
        }
        code.function(&f);
        Ok(())
    }
}
