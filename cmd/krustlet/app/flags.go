package app

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/krustlet/krustlet-go/pkg/config"
)

// newFlagsCommand returns the hidden "flags" command, which prints the flag
// reference of the root command, or with the argument "join" the flags
// join adds to those; `krustlet flags --markdown [join]` generates the
// README's tables.
func newFlagsCommand() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:       "flags [join]",
		Short:     "Print every flag with its alias, environment variable and default",
		Args:      cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"join"},
		Hidden:    true,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Root().LocalFlags()
			if len(args) == 1 {
				fs = ownFlags(subcommand(cmd.Root(), args[0]), fs)
			}
			docs := config.FlagDocs(fs)
			if markdown {
				return writeMarkdown(cmd.OutOrStdout(), docs)
			}
			return writeText(cmd.OutOrStdout(), docs)
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "Print a Markdown table.")
	return cmd
}

// subcommand returns root's subcommand called name.
func subcommand(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	panic("no subcommand " + name) // ValidArgs lists only existing ones
}

// ownFlags returns the flags of cmd that shared does not hold.
func ownFlags(cmd *cobra.Command, shared *pflag.FlagSet) *pflag.FlagSet {
	own := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if shared.Lookup(f.Name) == nil {
			own.AddFlag(f)
		}
	})
	return own
}

func writeMarkdown(w io.Writer, docs []config.FlagDoc) error {
	var b strings.Builder
	b.WriteString("| Flag | Alias | Environment variable | Default | Description |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, d := range docs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n",
			code(flagNames(d)...), code(dashed(d.Aliases)...), code(d.EnvVars...), code(d.Default), text(d.Usage))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeText(w io.Writer, docs []config.FlagDoc) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tALIAS\tENVIRONMENT\tDEFAULT")
	for _, d := range docs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.Join(flagNames(d), ", "), strings.Join(dashed(d.Aliases), ", "), strings.Join(d.EnvVars, ", "), d.Default)
	}
	return tw.Flush()
}

func flagNames(d config.FlagDoc) []string {
	if d.Shorthand != "" {
		return []string{"-" + d.Shorthand, "--" + d.Name}
	}
	return []string{"--" + d.Name}
}

func dashed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	return out
}

// code formats values as inline code, separated by commas; empty values
// are left out.
func code(values ...string) string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, "`"+cell(v)+"`")
		}
	}
	return strings.Join(out, ", ")
}

// text escapes prose for a Markdown table cell, where "<data-dir>" would be
// read as an HTML tag.
func text(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(cell(s))
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
