package devstack

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Bench reports the cold build time of each cached build (as recorded when
// it was built), then tears the stack down and times a warm bring-up (all
// builds cached), then the resident memory of each component.
func (s *Stack) Bench(ctx context.Context, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tCOMPONENT\tVALUE")
	if err := s.Up(ctx); err != nil { // make sure every build is cached
		return err
	}
	for _, rec := range s.cfg.buildRecords() {
		fmt.Fprintf(tw, "cold build\t%s@%s\t%.0f s (%s, built %s)\n", rec.Component, rec.Version, rec.Seconds, rec.GoVersion, rec.BuiltAt.Format(time.RFC3339))
	}
	start := time.Now()
	if err := s.Up(ctx); err != nil {
		return err
	}
	fmt.Fprintf(tw, "no-op bring-up\tstack\t%.1f s\n", time.Since(start).Seconds())
	if err := s.Down(ctx); err != nil {
		return err
	}
	start = time.Now()
	if err := s.Up(ctx); err != nil {
		return err
	}
	fmt.Fprintf(tw, "warm bring-up\tstack\t%.1f s\n", time.Since(start).Seconds())
	for _, st := range s.Status() {
		fmt.Fprintf(tw, "resident memory\t%s\t%d MiB\n", st.Name, st.RSSBytes>>20)
	}
	return tw.Flush()
}
