"""Where fnud keeps what it runs by: the runtime directory's paths, its lock, its
private-directory rules, state.json (what a restarted daemon adopts) and the releases
a rollback goes back to.

May import: common.
"""
