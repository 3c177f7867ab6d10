package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/diskcache-go/diskcache/engine"
)

func (a *app) checkCommand() *cobra.Command {
	var repair, asJSON bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the cache's store, and repair it by starting over",
		Long: `Verify the store of the cache directory: Pebble opens it (replaying the log and
reading the MANIFEST), every block of every table is read and its checksum
checked, every entry decodes (records of version 1, written before version 2,
with their own checksum), every value in the value log matches its entry's
checksum, every expiry index entry points at an entry with that expiry, the
counts saved at the last close agree with a scan, and the format is recorded:
2, or 1 for a store written before the bucketed keyspace, which is read as it
is. It prints a report, or JSON with
--json.

check needs the directory to itself: if a process has it open, it says which
one and exits 1. It writes nothing unless --repair is given and the store is
damaged: then it deletes the store/ folder (never other files in the
directory) and creates an empty store, since a cache can be filled again.

Exit codes: 0 the store is sound (or was damaged and --repair reset it),
1 the store is damaged (or check could not run), 2 usage error.`,
		Example: `  diskcache check --dir /var/cache/app
  diskcache check --dir /var/cache/app --repair`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := engine.Check(a.ctx, a.dir, &engine.Options{ResetIfDamaged: repair})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				printCheck(a, r)
			}
			if r.Damaged() && !r.Reset {
				return fmt.Errorf("check: %s is damaged (%s); 'diskcache check --repair' deletes its store and starts an empty one",
					r.Dir, problems(len(r.Problems)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "repair a damaged store: cut a damaged newest log at its first bad record, or else delete and recreate the store (its entries are lost)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a report")
	return cmd
}

// formatName says what a store format is.
func formatName(f int) string {
	switch f {
	case 0:
		return "unknown"
	case 1:
		return "1 (keys by hash; read as it is)"
	default:
		return fmt.Sprintf("%d (keys by hash bucket)", f)
	}
}

func printCheck(a *app, r *engine.CheckReport) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "directory\t%s\n", r.Dir)
	if !r.StoreFound {
		fmt.Fprintf(tw, "store\tnone yet (nothing was written)\n")
	} else {
		fmt.Fprintf(tw, "files\t%d tables (%s), %d logs (%s), %s\n",
			r.Tables, formatSize(r.TableBytes), r.Logs, formatSize(r.LogBytes), r.Manifest)
		if r.Segments > 0 {
			fmt.Fprintf(tw, "value log\t%d segments (%s)\n", r.Segments, formatSize(r.SegmentBytes))
		}
		fmt.Fprintf(tw, "format\t%s\n", formatName(r.Format))
		fmt.Fprintf(tw, "entries\t%d (%s stored)\n", r.Entries, formatSize(r.Bytes))
		fmt.Fprintf(tw, "expiring\t%d (%d expired, not yet swept); %d index entries\n", r.Expiring, r.Expired, r.IndexEntries)
		if r.CleanClose {
			fmt.Fprintf(tw, "saved counts\t%d entries, %s\n", r.SavedEntries, formatSize(r.SavedBytes))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(tw, "problem\t%s\n", p)
	}
	switch {
	case r.Reset:
		fmt.Fprintf(tw, "result\tdamaged; the store was deleted and recreated empty\n")
	case r.Damaged():
		fmt.Fprintf(tw, "result\tDAMAGED: %s\n", problems(len(r.Problems)))
	default:
		fmt.Fprintf(tw, "result\tok (%v)\n", r.Took.Round(1e6))
	}
	tw.Flush()
}

func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
