//! Fuel metering inserted into the Wasm itself.
//!
//! Native code has no interpreter loop to count instructions in, so the module counts for
//! itself. [`instrument`] adds two imports from the module [`IMPORT_MODULE`]:
//!
//! - the mutable `i64` global [`FUEL_GLOBAL`]: the fuel left in the current slice;
//! - the function [`REFUEL_FUNC`] (`() -> ()`), called when that counter drops below zero.
//!
//! Every loop header, and the entry of every function that can be entered again before it
//! returns, subtracts the cost of the code that follows it (its operators up to the next loop
//! header, at least 1) and calls `refuel` if the counter went negative. Every backward branch
//! targets a loop header, so an endless loop reaches `refuel` again and again; so does an
//! endless recursion, which needs a cycle of calls: the entries metered are those of functions
//! on a cycle of the call graph, of functions that may be called through a table (`call_indirect`
//! may close a cycle the graph does not show) and of those the host calls (exports, the start
//! function). There the host reschedules, checks for fatal signals and either refills the
//! counter for another slice or traps.
//!
//! Any other function is entered only by direct calls and runs a bounded time before it
//! reaches a loop header, a call or its end, so its entry is charged at each call site
//! instead, with the region containing the call: no check at its entry, and a leaf function
//! stays a leaf (no call to `refuel` in its body, so no frame to set up for one).
//!
//! The instrumentation is stack-neutral and uses no local of the function, so every operator
//! of the original module keeps its meaning; only function and global indices shift (the
//! imports come first in their index spaces) and are renumbered throughout, names included.
//! The one body it changes is that of a known `__multi3`, which calls a third import instead
//! ([`crate::multi3`]) and is charged as the original was.

use crate::multi3::{self, MUL128_FUNC};
use core::fmt;
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    CodeSection, EntityType, Function, GlobalType, ImportSection, Instruction, Module, SectionId,
    TypeSection, ValType,
};
use wasmparser::{
    CompositeInnerType, FunctionBody, Operator, Parser, Payload, TypeRef, Validator, WasmFeatures,
};

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
    /// Per defined function, whether its entry is metered.
    metered: Vec<bool>,
    /// Per defined function, the cost of its entry region, with the entry regions of the
    /// unmetered functions it calls there: what a call site charges for it if unmetered.
    entry_cost: Vec<u32>,
    /// Per defined function, whether it is a known `__multi3`, and which.
    multi3: Vec<Option<multi3::Order>>,
}

/// A defined function as the call-graph analysis sees it.
#[derive(Debug, Default)]
struct Body {
    /// Operators up to and including the first loop header.
    entry_ops: u32,
    /// Functions called directly before the first loop header.
    entry_calls: Vec<u32>,
    /// Functions called directly anywhere.
    calls: Vec<u32>,
}

/// Functions `ops` names with `ref.func`: they may be called through a table.
fn referenced(ops: wasmparser::OperatorsReader<'_>, into: &mut Vec<u32>) -> Result<(), Error> {
    for op in ops {
        if let Operator::RefFunc { function_index } = op? {
            into.push(function_index);
        }
    }
    Ok(())
}

impl Counts {
    fn of(wasm: &[u8]) -> Result<Self, Error> {
        let mut counts = Counts::default();
        let mut bodies = Vec::new();
        // Parameters and results of each type, and the type of each defined function.
        let mut signatures: Vec<(Vec<wasmparser::ValType>, Vec<wasmparser::ValType>)> = Vec::new();
        let mut defined_types = Vec::new();
        // Entered from outside or possibly through a table.
        let mut entered = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::ExportSection(exports) => {
                    for export in exports {
                        let export = export?;
                        if export.kind == wasmparser::ExternalKind::Func {
                            entered.push(export.index);
                        }
                    }
                }
                Payload::StartSection { func, .. } => entered.push(func),
                Payload::GlobalSection(globals) => {
                    for global in globals {
                        referenced(global?.init_expr.get_operators_reader(), &mut entered)?;
                    }
                }
                Payload::ElementSection(elements) => {
                    for element in elements {
                        match element?.items {
                            wasmparser::ElementItems::Functions(funcs) => {
                                for func in funcs {
                                    entered.push(func?);
                                }
                            }
                            wasmparser::ElementItems::Expressions(_, exprs) => {
                                for expr in exprs {
                                    referenced(expr?.get_operators_reader(), &mut entered)?;
                                }
                            }
                        }
                    }
                }
                Payload::FunctionSection(types) => {
                    for ty in types {
                        defined_types.push(ty?);
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let range = body.range();
                    let bytes = wasm.get(range.start as usize..range.end as usize);
                    let signature = defined_types
                        .get(bodies.len())
                        .and_then(|&ty| signatures.get(ty as usize));
                    counts.multi3.push(bytes.zip(signature).and_then(
                        |(bytes, (params, results))| multi3::find(params, results, bytes),
                    ));
                    let mut b = Body::default();
                    let mut in_entry = true;
                    for op in body.get_operators_reader()? {
                        let op = op?;
                        if in_entry {
                            b.entry_ops = b.entry_ops.saturating_add(1);
                        }
                        match op {
                            Operator::Loop { .. } => in_entry = false,
                            Operator::Call { function_index } => {
                                b.calls.push(function_index);
                                if in_entry {
                                    b.entry_calls.push(function_index);
                                }
                            }
                            Operator::RefFunc { function_index } => entered.push(function_index),
                            _ => {}
                        }
                    }
                    bodies.push(b);
                }
                Payload::TypeSection(types) => {
                    for group in types {
                        for ty in group?.types() {
                            counts.types = counts.types.saturating_add(1);
                            signatures.push(match &ty.composite_type.inner {
                                CompositeInnerType::Func(f) => {
                                    (f.params().to_vec(), f.results().to_vec())
                                }
                                _ => (Vec::new(), Vec::new()),
                            });
                        }
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
        counts.plan(&bodies, &entered);
        Ok(counts)
    }

    /// Decides which entries are metered and what the others cost their callers.
    fn plan(&mut self, bodies: &[Body], entered: &[u32]) {
        let imported = self.imported_funcs;
        let defined = |f: u32| f.checked_sub(imported).map(|d| d as usize);
        let graph: Vec<Vec<usize>> = bodies
            .iter()
            .map(|b| b.calls.iter().filter_map(|&f| defined(f)).collect())
            .collect();
        let components = strongly_connected(&graph);
        self.metered = vec![false; bodies.len()];
        for component in &components {
            let cyclic = component.len() > 1 || graph[component[0]].contains(&component[0]);
            for &d in component {
                self.metered[d] = cyclic;
            }
        }
        for d in entered.iter().filter_map(|&f| defined(f)) {
            if let Some(m) = self.metered.get_mut(d) {
                *m = true;
            }
        }
        // Components come callees first, so every unmetered callee's cost is known in time.
        self.entry_cost = vec![0; bodies.len()];
        for &d in components.iter().flatten() {
            let callees: u32 = bodies[d]
                .entry_calls
                .iter()
                .filter_map(|&f| defined(f))
                .filter(|&c| !self.metered[c])
                .fold(0, |sum, c| sum.saturating_add(self.entry_cost[c]));
            self.entry_cost[d] = bodies[d].entry_ops.saturating_add(callees);
        }
    }

    /// Whether the module has a known `__multi3`, and so imports [`MUL128_FUNC`].
    fn imports_mul128(&self) -> bool {
        self.multi3.iter().any(Option::is_some)
    }

    /// What a call of `func` (an index of the original module) adds to its region's cost.
    fn call_cost(&self, func: u32) -> u32 {
        func.checked_sub(self.imported_funcs)
            .map(|d| d as usize)
            .filter(|&d| !self.metered[d])
            .map_or(0, |d| self.entry_cost[d])
    }
}

/// The strongly connected components of `graph` (Tarjan's algorithm, without recursion), in
/// reverse topological order: a component comes after every component it has edges to.
fn strongly_connected(graph: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = graph.len();
    let (mut index, mut low, mut on_stack) = (vec![UNSEEN; n], vec![0; n], vec![false; n]);
    let (mut stack, mut components, mut next) = (Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // (node, next edge to follow)
        let mut work = vec![(root, 0)];
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = graph[v].get(*edge) {
                *edge += 1;
                if index[w] == UNSEEN {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
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
        bodies_done: 0,
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
    /// Function bodies re-encoded so far.
    bodies_done: usize,
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

    /// Index of the mul128 function, after the refuel function.
    fn mul128_func(&self) -> u32 {
        self.counts.imported_funcs + 1
    }

    /// Functions imported here: refuel, and mul128 if the module needs it.
    fn added_funcs(&self) -> u32 {
        1 + u32::from(self.counts.imports_mul128())
    }

    /// Index of the fuel global.
    fn fuel_global(&self) -> u32 {
        self.counts.imported_globals
    }

    fn add_refuel_type(&mut self, types: &mut TypeSection) {
        types.ty().function([], []);
        if self.counts.imports_mul128() {
            types.ty().function([ValType::I64; 4], [ValType::I64; 2]);
        }
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
        if self.counts.imports_mul128() {
            imports.import(
                IMPORT_MODULE,
                MUL128_FUNC,
                EntityType::Function(self.refuel_type() + 1),
            );
        }
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

impl Meter {
    /// Cost of the region starting at `ops[start]`: its operators up to the next loop header,
    /// and the entries of the unmetered functions it calls.
    fn region_cost(&self, ops: &[Operator<'_>], start: usize) -> u32 {
        let mut cost: u32 = 0;
        for op in &ops[start..] {
            cost = cost.saturating_add(1);
            match op {
                Operator::Loop { .. } => break,
                Operator::Call { function_index } => {
                    cost = cost.saturating_add(self.counts.call_cost(*function_index));
                }
                _ => {}
            }
        }
        cost
    }
}

impl Reencode for Meter {
    type Error = core::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(if func >= self.counts.imported_funcs {
            func + self.added_funcs()
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
        let body = self.bodies_done;
        self.bodies_done += 1;
        let multi3 = self.counts.multi3[body];
        let mut f = match multi3 {
            Some(_) => multi3::function(),
            None => self.new_function_with_parsed_locals(&func)?,
        };
        let mut reader = func.get_operators_reader()?;
        let mut ops = Vec::new();
        while !reader.eof() {
            ops.push(reader.read()?);
        }
        if self.counts.metered[body] {
            self.charge(&mut f, self.region_cost(&ops, 0));
        }
        if let Some(order) = multi3 {
            multi3::store_product(&mut f, order, self.mul128_func());
            code.function(&f);
            return Ok(());
        }
        for (i, op) in ops.iter().enumerate() {
            let is_loop = matches!(op, Operator::Loop { .. });
            f.instruction(&self.instruction(op.clone())?);
            if is_loop {
                self.charge(&mut f, self.region_cost(&ops, i + 1));
            }
        }
        code.function(&f);
        Ok(())
    }
}
