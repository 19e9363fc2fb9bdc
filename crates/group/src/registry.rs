use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::error::DuplicateGroup;
use crate::group::Group;

/// A set of groups by name: what a server looks groups up in.
///
/// A group is in a registry only when put there, by [`Registry::insert`] or by
/// [`GroupBuilder::register`](crate::GroupBuilder::register): building one registers nothing,
/// so an application can build, drop and rebuild a group as it likes. Programs with one node
/// may use the process-wide registry in [`groups`], as groupcache's `GetGroup` does; several
/// nodes in one process (a demo, a test cluster) each need their own, or their groups' names
/// would collide.
#[derive(Clone, Default)]
pub struct Registry {
    groups: Arc<RwLock<HashMap<String, Arc<Group>>>>,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Registry::default()
    }

    /// The group called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Arc<Group>> {
        self.read().get(name).cloned()
    }

    /// The names of all groups, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Every group, sorted by name.
    #[must_use]
    pub fn all(&self) -> Vec<Arc<Group>> {
        let mut all: Vec<Arc<Group>> = self.read().values().cloned().collect();
        all.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Takes the group out of the registry. It lives on while callers hold it; its background
    /// sweeper stops when the last holder drops it.
    pub fn remove(&self, name: &str) -> Option<Arc<Group>> {
        self.groups
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }

    /// How many groups there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Adds `group` under its name.
    ///
    /// # Errors
    ///
    /// [`DuplicateGroup`] if a group of that name is there already; the registry is unchanged.
    pub fn insert(&self, group: Arc<Group>) -> Result<(), DuplicateGroup> {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        if groups.contains_key(group.name()) {
            return Err(DuplicateGroup(group.name().to_owned()));
        }
        groups.insert(group.name().to_owned(), group);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Group>>> {
        // No code panics while holding the lock, but a poisoned map is still a valid map.
        self.groups.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("groups", &self.names())
            .finish()
    }
}

/// The process-wide registry, as groupcache's `GetGroup` sees it.
pub mod groups {
    use super::*;

    /// The process-wide registry itself, e.g. to hand to a server.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// The group called `name` in the process-wide registry.
    #[must_use]
    pub fn get(name: &str) -> Option<Arc<Group>> {
        global().get(name)
    }

    /// The names of all groups in the process-wide registry, sorted.
    #[must_use]
    pub fn names() -> Vec<String> {
        global().names()
    }

    /// Takes a group out of the process-wide registry.
    pub fn remove(name: &str) -> Option<Arc<Group>> {
        global().remove(name)
    }

    /// Adds a group to the process-wide registry.
    ///
    /// # Errors
    ///
    /// [`DuplicateGroup`] if a group of that name is there already.
    pub fn insert(group: Arc<Group>) -> Result<(), DuplicateGroup> {
        global().insert(group)
    }
}
