// Package configs holds gomta's example configurations: the built-in default
// (two mail hosts that mail each other), the course-compatible files and a
// systemd unit. The default is embedded so that `mtad` and `agent` run with no
// file at all.
package configs

import _ "embed"

// Default is the built-in configuration (default.toml), in the course's schema
// with the fake DNS tables inline.
//
//go:embed default.toml
var Default []byte
