package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/diskcache-go/diskcache/engine"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const defaultDir = "./diskcache-data"

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// app is one run of the command line: its streams and the flags shared by
// every subcommand.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	dir    string
}

// run runs the command line args (without the program name) and returns
// the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "diskcache: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	return exitFailure
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "diskcache",
		Short: "A persistent cache in a directory, from the shell or over the Redis protocol",
		Long: `diskcache reads and writes a diskcache directory, and serves it to any Redis
client with 'diskcache serve'. Every command works whether or not another
process has the directory open.

Sizes are written like 512MiB, 1GiB or 1GB; durations like 90s, 5m or 7d.
Exit codes: 0 success, 1 runtime error (a missing key too), 2 usage error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(a.stderr)
			cmd.Usage()
			return usagef("no command given")
		},
	}
	root.PersistentFlags().StringVar(&a.dir, "dir", defaultDir, "the cache directory")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		a.getCommand(), a.setCommand(), a.delCommand(), a.existsCommand(), a.ttlCommand(),
		a.lenCommand(), a.clearCommand(), a.statsCommand(), a.serveCommand(), a.checkCommand(),
	)
	// The help command's unknown topics are usage errors too.
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			return c.Help()
		},
	})
	return root
}

// exactArgs is cobra.ExactArgs with a usage error that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s (got %d arguments)", cmd.Name(), names, len(args))
		}
		return nil
	}
}

// open opens the cache directory for a command.
func (a *app) open(opts *engine.Options) (*engine.Cache, error) {
	return engine.Open(a.dir, opts)
}

// withCache opens the cache, runs f and closes the cache, reporting the
// first error.
//
// A one-shot command logs warnings and errors only: handing the directory
// over between short-lived processes is routine, not news for a shell.
func (a *app) withCache(f func(c *engine.Cache) error) (err error) {
	c, err := a.open(&engine.Options{
		Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := c.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	return f(c)
}
