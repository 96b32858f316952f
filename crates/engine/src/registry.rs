//! The registry of loaded modules.

use crate::budget::{self, MemoryBudget};
use crate::module::check_name;
use crate::{Error, Host, LoadSpec, LoadedModule, MAX_MODULES};
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use wasm_proto::ModuleInfo;

/// Named modules. The registry itself does no locking: its owner serialises `&mut` access
/// (a kernel mutex in `wasm.ko`), while calls run on an [`Arc`] taken out of it, outside any
/// lock.
pub struct Registry<H: Host> {
    modules: BTreeMap<String, Arc<LoadedModule<H>>>,
    budget: &'static MemoryBudget,
}

impl<H: Host> Default for Registry<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Host> Registry<H> {
    /// An empty registry, drawing from the process-wide budget of [`crate::DEFAULT_MEMORY_CAP`].
    pub const fn new() -> Self {
        Self::with_budget(&budget::GLOBAL)
    }

    /// An empty registry whose modules draw linear memory from `budget`.
    pub const fn with_budget(budget: &'static MemoryBudget) -> Self {
        Registry {
            modules: BTreeMap::new(),
            budget,
        }
    }

    /// The memory budget of this registry's modules.
    pub fn budget(&self) -> &'static MemoryBudget {
        self.budget
    }

    /// Fails early if `name` is malformed or taken, before the costly compilation.
    ///
    /// # Errors
    ///
    /// [`Error::BadName`], [`Error::Exists`] or [`Error::Full`].
    pub fn check_free(&self, name: &str) -> Result<(), Error> {
        check_name(name)?;
        if self.modules.len() >= MAX_MODULES {
            return Err(Error::Full(MAX_MODULES));
        }
        if self.modules.contains_key(name) {
            return Err(Error::Exists(name.to_string()));
        }
        Ok(())
    }

    /// Adds a module made by [`LoadedModule::load`] and [`LoadedModule::run_entrypoint`].
    ///
    /// # Errors
    ///
    /// [`Error::Exists`] if the name was taken meanwhile; the module is then dropped.
    pub fn insert(&mut self, module: LoadedModule<H>) -> Result<Arc<LoadedModule<H>>, Error> {
        self.check_free(module.name())?;
        let module = Arc::new(module);
        self.modules
            .insert(module.name().to_string(), module.clone());
        Ok(module)
    }

    /// Compiles and adds a module in one step (for callers without concurrency).
    ///
    /// # Errors
    ///
    /// As [`Self::check_free`] and [`LoadedModule::load`].
    pub fn load(&mut self, spec: &LoadSpec<'_>) -> Result<Arc<LoadedModule<H>>, Error> {
        self.check_free(spec.name)?;
        let mut module = LoadedModule::load(spec, self.budget)?;
        module.run_entrypoint()?;
        self.insert(module)
    }

    /// Removes a module. It is freed when the last running call on it returns.
    ///
    /// # Errors
    ///
    /// [`Error::NoModule`].
    pub fn remove(&mut self, name: &str) -> Result<Arc<LoadedModule<H>>, Error> {
        let module = self
            .modules
            .remove(name)
            .ok_or_else(|| Error::NoModule(name.to_string()))?;
        if self.modules.is_empty() {
            // An emptied BTreeMap keeps its root node: with no module left, hold no memory.
            self.modules = BTreeMap::new();
        }
        Ok(module)
    }

    /// Looks a module up.
    ///
    /// # Errors
    ///
    /// [`Error::NoModule`].
    pub fn get(&self, name: &str) -> Result<Arc<LoadedModule<H>>, Error> {
        self.modules
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoModule(name.to_string()))
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// Whether no module is loaded.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// Describes every module, in name order.
    pub fn list(&self) -> Vec<ModuleInfo> {
        self.modules.values().map(|m| m.info()).collect()
    }

    /// Removes every module.
    pub fn clear(&mut self) {
        self.modules.clear();
    }
}
