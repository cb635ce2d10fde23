"""Translation on its own core: a process that follows the journal and fills the store."""
