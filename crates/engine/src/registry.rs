//! The registry of loaded modules.

use crate::budget::{self, MemoryBudget};
use crate::module::check_name;
use crate::{Error, Host, LoadSpec, LoadedModule, Replaced, MAX_MODULES};
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use wasm_proto::ModuleInfo;

/// What a registry holds: something with a name that describes itself.
pub trait Entry: Send + Sync {
    /// The registry name.
    fn name(&self) -> &str;
    /// The description `List` reports.
    fn info(&self) -> ModuleInfo;
}

impl<H: Host> Entry for LoadedModule<H> {
    fn name(&self) -> &str {
        LoadedModule::name(self)
    }

    fn info(&self) -> ModuleInfo {
        LoadedModule::info(self)
    }
}

/// Named modules: [`LoadedModule`]s, or (in `wasm.ko`) whatever [`Entry`] holds modules of
/// every tier. The registry itself does no locking: its owner serialises `&mut` access (a
/// kernel mutex in `wasm.ko`), while calls run on an [`Arc`] taken out of it, outside any
/// lock. Changing it allocates only fallibly, and nothing changes when that fails.
pub struct Registry<M: Entry> {
    /// Sorted by name.
    modules: Vec<Arc<M>>,
    budget: &'static MemoryBudget,
}

impl<M: Entry> Default for Registry<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Entry> Registry<M> {
    /// An empty registry, drawing from the process-wide budget of [`crate::DEFAULT_MEMORY_CAP`].
    pub const fn new() -> Self {
        Self::with_budget(&budget::GLOBAL)
    }

    /// An empty registry whose modules draw linear memory from `budget`.
    pub const fn with_budget(budget: &'static MemoryBudget) -> Self {
        Registry {
            modules: Vec::new(),
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
        if self.find(name).is_ok() {
            return Err(Error::Exists(name.to_string()));
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.modules.binary_search_by(|m| m.name().cmp(name))
    }

    /// Adds a module (made by [`LoadedModule::load`] and [`LoadedModule::run_entrypoint`]).
    ///
    /// # Errors
    ///
    /// [`Error::Exists`] if the name was taken meanwhile, [`Error::OutOfMemory`]; the registry
    /// is then unchanged.
    pub fn insert(&mut self, module: Arc<M>) -> Result<(), Error> {
        self.check_free(module.name())?;
        self.modules
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        let at = self.find(module.name()).unwrap_or_else(|at| at);
        self.modules.insert(at, module);
        Ok(())
    }

    /// Removes a module. It is freed when the last running call on it returns.
    ///
    /// # Errors
    ///
    /// [`Error::NoModule`].
    pub fn remove(&mut self, name: &str) -> Result<Arc<M>, Error> {
        let at = self
            .find(name)
            .map_err(|_| Error::NoModule(name.to_string()))?;
        let module = self.modules.remove(at);
        if self.modules.is_empty() {
            // With no module left, hold no memory.
            self.modules = Vec::new();
        }
        Ok(module)
    }

    /// Puts `module` in the place of the module of the same name, `old`, and returns it: the
    /// step that makes a replace visible to new requests. Does not allocate.
    ///
    /// # Errors
    ///
    /// [`Error::NoModule`] if no module of that name is loaded, [`Error::Busy`] if it is not
    /// `old` any more (it was replaced or reloaded meanwhile); the registry is then unchanged.
    pub fn replace(&mut self, old: &Arc<M>, module: Arc<M>) -> Result<Arc<M>, Error> {
        let at = self
            .find(module.name())
            .map_err(|_| Error::NoModule(module.name().to_string()))?;
        if !Arc::ptr_eq(&self.modules[at], old) {
            return Err(Error::Busy);
        }
        Ok(core::mem::replace(&mut self.modules[at], module))
    }

    /// Looks a module up.
    ///
    /// # Errors
    ///
    /// [`Error::NoModule`].
    pub fn get(&self, name: &str) -> Result<Arc<M>, Error> {
        self.find(name)
            .map(|at| self.modules[at].clone())
            .map_err(|_| Error::NoModule(name.to_string()))
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
        self.modules.iter().map(|m| m.info()).collect()
    }

    /// Removes every module.
    pub fn clear(&mut self) {
        self.modules = Vec::new();
    }
}

impl<H: Host> Registry<LoadedModule<H>> {
    /// Compiles `spec` as a replacement of the loaded module of its name and swaps it in (for
    /// callers without concurrency). Returns the new module; the old one is freed when its
    /// last call returns.
    ///
    /// # Errors
    ///
    /// [`Error::NoModule`], [`Error::Replace`] for an export removed or changed, as
    /// [`LoadedModule::load`]; the old module then stays.
    pub fn replace_with(&mut self, spec: &LoadSpec<'_>) -> Result<Arc<LoadedModule<H>>, Error> {
        let old = self.get(spec.name)?;
        let spec = LoadSpec {
            replaces: Some(Replaced {
                exports: old.exports(),
                version: old.version(),
            }),
            ..*spec
        };
        let mut module = LoadedModule::load(&spec, self.budget)?;
        module.run_entrypoint()?;
        let module = Arc::new(module);
        self.replace(&old, module.clone())?;
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
        let module = Arc::new(module);
        self.insert(module.clone())?;
        Ok(module)
    }
}
