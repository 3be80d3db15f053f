// Command report prints the figures of a `make bench` run beside their targets and writes them to one JSON file.
//
//	go run ./internal/benchfig/report bench.jsonl bench.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: report FIGURES.jsonl OUT.json")
		os.Exit(2)
	}
	if err := report(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func report(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open figures: %w", err)
	}
	defer f.Close()
	var figs []benchfig.Figure
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var fig benchfig.Figure
		if err := json.Unmarshal(sc.Bytes(), &fig); err != nil {
			return fmt.Errorf("%s:%d: %w", in, line, err)
		}
		figs = append(figs, fig)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read figures: %w", err)
	}
	fmt.Printf("%-62s %14s  %-8s %-16s %s\n", "figure", "value", "unit", "target", "")
	for _, fig := range figs {
		verdict := ""
		if fig.Met != nil {
			verdict = "MISSED"
			if *fig.Met {
				verdict = "ok"
			}
		}
		fmt.Printf("%-62s %14.4g  %-8s %-16s %s\n", fig.Name, fig.Value, fig.Unit, fig.Target, verdict)
	}
	doc := struct {
		Time    time.Time         `json:"time"`
		GOOS    string            `json:"goos"`
		GOARCH  string            `json:"goarch"`
		CPUs    int               `json:"cpus"`
		Figures []benchfig.Figure `json:"figures"`
	}{time.Now().UTC(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), figs}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Printf("\n%d figures written to %s\n", len(figs), out)
	return nil
}
