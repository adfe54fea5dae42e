// Package jail keeps every file access of `snapferry serve` inside its root folder. A client
// names files by relative paths; Resolve refuses absolute paths, `..`, empty, `.` and hidden
// server-private components, names with NUL or line breaks, and paths that reach outside the
// root through a symlink (also a dangling one that a create would follow).
//
// The symlink check resolves the deepest existing ancestor with filepath.EvalSymlinks on every
// access. A local user who swaps a folder for a symlink between the check and the open can still
// race it; the server runs as the client's own SSH user, so that user gains nothing by it. The
// check is against a client that names paths it should not reach, not against the host's users.
package jail
