//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package cli

import "os"

// windowColumns is 0 where the terminal's size is not asked: COLUMNS or the
// default applies.
func windowColumns(*os.File) int { return 0 }
