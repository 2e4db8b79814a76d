//go:build tools

// Package tools pins FerretDB's server command as a dependency of this
// module, so `go mod vendor` fetches it (and only what it needs) from the
// Go module proxy at the versions go.sum records.
package tools

import _ "github.com/FerretDB/FerretDB/cmd/ferretdb"
