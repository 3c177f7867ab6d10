package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/diskcache-go/diskcache/engine"
)

// notFound words a missing key for get and ttl.
func notFound(key string) error { return fmt.Errorf("%q: key not found", key) }

func (a *app) getCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a key",
		Long: `Print the value of KEY, byte for byte, to standard output (a newline is added
only when standard output is a terminal). A missing or expired key is an error
(exit code 1).`,
		Args: exactArgs(1, "one KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				v, err := c.Get(a.ctx, args[0])
				if errors.Is(err, engine.ErrNotFound) {
					return notFound(args[0])
				}
				if err != nil {
					return err
				}
				if _, err := a.stdout.Write(v); err != nil {
					return err
				}
				if isTerminal(a.stdout) && (len(v) == 0 || v[len(v)-1] != '\n') {
					fmt.Fprintln(a.stdout)
				}
				return nil
			})
		},
	}
}

func (a *app) setCommand() *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Store a value under a key",
		Long: `Store VALUE under KEY, replacing what was there. A VALUE of - reads the value
from standard input. With --ttl the entry expires after that long.`,
		Example: `  diskcache set greeting hello
  diskcache set page:/index - --ttl 5m < index.html`,
		Args: exactArgs(2, "KEY and VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := []byte(args[1])
			if args[1] == "-" {
				var err error
				if value, err = io.ReadAll(a.stdin); err != nil {
					return fmt.Errorf("read the value from standard input: %w", err)
				}
			}
			return a.withCache(func(c *engine.Cache) error {
				return c.Set(a.ctx, args[0], value, ttl)
			})
		},
	}
	cmd.Flags().Var(durationFlag{&ttl}, "ttl", "expire the entry after this long (e.g. 90s, 5m, 7d); 0 never")
	return cmd
}

func (a *app) delCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "del KEY...",
		Short: "Delete keys",
		Long:  "Delete the keys and print how many of them were there.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("del takes at least one KEY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				n, err := c.DeleteMany(a.ctx, args...)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, n)
				return nil
			})
		},
	}
}

func (a *app) existsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "exists KEY",
		Short: "Tell whether a key is present",
		Long:  "Print true if KEY holds a value that has not expired, false otherwise.",
		Args:  exactArgs(1, "one KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				ok, err := c.Exists(a.ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, ok)
				return nil
			})
		},
	}
}

func (a *app) ttlCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ttl KEY",
		Short: "Print the time a key has left",
		Long: `Print the time KEY has left to live (such as 4m59.5s), or "none" when it never
expires. A missing or expired key is an error (exit code 1).`,
		Args: exactArgs(1, "one KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				d, err := c.TTL(a.ctx, args[0])
				if errors.Is(err, engine.ErrNotFound) {
					return notFound(args[0])
				}
				if err != nil {
					return err
				}
				if d <= 0 {
					fmt.Fprintln(a.stdout, "none")
				} else {
					fmt.Fprintln(a.stdout, d.Round(time.Millisecond))
				}
				return nil
			})
		},
	}
}

func (a *app) lenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "len",
		Short: "Print the number of entries",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				n, err := c.Len(a.ctx)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, n)
				return nil
			})
		},
	}
}

func (a *app) clearCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "clear",
		Short: "Delete every entry",
		Long: `Delete every entry of the cache. It asks for confirmation on the terminal
unless --yes is given; files the cache did not create are left alone.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				if !yes {
					n, err := c.Len(a.ctx)
					if err != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "Delete all %d entries of %s? [y/N] ", n, c.Dir())
					line, _ := bufio.NewReader(a.stdin).ReadString('\n')
					if answer := strings.ToLower(strings.TrimSpace(line)); answer != "y" && answer != "yes" {
						return errors.New("clear: not confirmed; nothing deleted (use --yes to skip the question)")
					}
				}
				return c.Clear(a.ctx)
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// statsJSON is what stats --json prints.
type statsJSON struct {
	Dir          string `json:"dir"`
	Entries      int64  `json:"entries"`
	Bytes        int64  `json:"bytes"`
	DiskBytes    int64  `json:"disk_bytes"`
	Hits         int64  `json:"hits"`
	Misses       int64  `json:"misses"`
	Sets         int64  `json:"sets"`
	Deletes      int64  `json:"deletes"`
	Expirations  int64  `json:"expirations"`
	Evictions    int64  `json:"evictions"`
	EvictedBytes int64  `json:"evicted_bytes"`
}

func (a *app) statsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print the cache's figures",
		Long: `Print the cache's entries, sizes and counters as a table, or as JSON with
--json. Hits, misses and the other counters count since the directory was
opened by the process that owns it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withCache(func(c *engine.Cache) error {
				s := c.Stats()
				// Len waits until the entry count is exact (after a crash).
				n, err := c.Len(a.ctx)
				if err != nil {
					return err
				}
				out := statsJSON{
					Dir: c.Dir(), Entries: n, Bytes: s.Bytes, DiskBytes: s.DiskBytes,
					Hits: s.Hits, Misses: s.Misses, Sets: s.Sets, Deletes: s.Deletes,
					Expirations: s.Expirations, Evictions: s.Evictions, EvictedBytes: s.EvictedBytes,
				}
				if asJSON {
					enc := json.NewEncoder(a.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "directory\t%s\n", out.Dir)
				fmt.Fprintf(tw, "entries\t%d\n", out.Entries)
				fmt.Fprintf(tw, "stored bytes\t%s (%d)\n", formatSize(out.Bytes), out.Bytes)
				fmt.Fprintf(tw, "disk bytes\t%s (%d)\n", formatSize(out.DiskBytes), out.DiskBytes)
				fmt.Fprintf(tw, "hits\t%d\n", out.Hits)
				fmt.Fprintf(tw, "misses\t%d\n", out.Misses)
				if total := out.Hits + out.Misses; total > 0 {
					fmt.Fprintf(tw, "hit ratio\t%.1f%%\n", 100*float64(out.Hits)/float64(total))
				}
				fmt.Fprintf(tw, "sets\t%d\n", out.Sets)
				fmt.Fprintf(tw, "deletes\t%d\n", out.Deletes)
				fmt.Fprintf(tw, "expirations\t%d\n", out.Expirations)
				fmt.Fprintf(tw, "evictions\t%d\n", out.Evictions)
				fmt.Fprintf(tw, "evicted bytes\t%s (%d)\n", formatSize(out.EvictedBytes), out.EvictedBytes)
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
