// Package layout holds no code: its tests hold the module's import graph to
// the table of docs/architecture.md, and the function binaries to what they
// may link.
package layout
