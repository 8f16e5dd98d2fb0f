package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// jsonFlag is -json: alone (a boolean flag) it prints the report as JSON on
// stdout; with a file name (-json FILE or -json=FILE) it writes the JSON
// there and the text report to stdout.
type jsonFlag struct {
	on   *bool
	file *string
}

func (j *jsonFlag) IsBoolFlag() bool { return true }

func (j *jsonFlag) String() string {
	if j == nil || j.on == nil {
		return "false"
	}
	if *j.file != "" {
		return *j.file
	}
	return fmt.Sprint(*j.on)
}

func (j *jsonFlag) Set(s string) error {
	switch s {
	case "true":
		*j.on, *j.file = true, ""
	case "false":
		*j.on, *j.file = false, ""
	default:
		*j.on, *j.file = false, s
	}
	return nil
}

// jsonFileArgs rewrites "-json FILE" into "-json=FILE" for a flag set whose
// -json is a jsonFlag: a boolean flag cannot take a separate value, and no
// mode takes positional arguments, so a word after -json that is not a flag
// can only be its file.
func jsonFileArgs(fs *flag.FlagSet, args []string) []string {
	f := fs.Lookup("json")
	if f == nil {
		return args
	}
	if _, ok := f.Value.(*jsonFlag); !ok {
		return args
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "-json" || a == "--json") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") &&
			args[i+1] != "true" && args[i+1] != "false" {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// emitReport prints the text report (or the JSON with -json) on stdout and,
// with -json FILE, writes v as JSON into FILE.
func emitReport(stdout io.Writer, c *common, v any, text func(io.Writer) error) error {
	if c.jsonFile != "" {
		f, err := os.Create(c.jsonFile)
		if err != nil {
			return fmt.Errorf("-json: %w", err)
		}
		err = writeJSON(f, v)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("-json: %w", err)
		}
	}
	if c.json {
		return writeJSON(stdout, v)
	}
	return text(stdout)
}
