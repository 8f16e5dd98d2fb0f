package main

import (
	"fmt"
	"html"
	"strings"
)

// chart draws throughput per workload, gomta beside its peer, as an SVG of
// horizontal bars. Each row pair is scaled to its own larger value (the
// workloads' units differ); the numbers are printed on the bars.
func chart(sum []*stat) string {
	type row struct {
		label string
		g, p  *stat
		peer  string
	}
	var rows []row
	for _, wl := range []string{"w1", "w2", "w3", "w4", "w5"} {
		for _, c := range configs(sum, wl) {
			switch wl {
			case "w4":
				rows = append(rows, row{"W4 sink " + c + " (msg/s)", find(sum, "w1", c, "gomta"), find(sum, "w4", c, "smtp-sink"), "smtp-sink"})
			case "w5":
				rows = append(rows, row{"W5 " + c + " (sess/s)", find(sum, wl, c, "gomta"), find(sum, wl, c, "dovecot"), "Dovecot"})
			default:
				rows = append(rows, row{strings.ToUpper(wl) + " " + c + " (msg/s)", find(sum, wl, c, "gomta"), find(sum, wl, c, "postfix"), "Postfix"})
			}
		}
	}
	const (
		left, barW, barH, gap, top = 230, 420, 14, 12, 40
	)
	h := top + len(rows)*(2*barH+gap) + 20
	var w strings.Builder
	fmt.Fprintf(&w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", left+barW+90, h)
	fmt.Fprintf(&w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&w, `<text x="10" y="18" font-size="14">gomta (blue) beside its peer (grey): throughput, median of the rounds</text>`+"\n")
	fmt.Fprintf(&w, `<text x="10" y="32" fill="#555">each pair scaled to its larger value; W4 compares gomta's W1 rate with smtp-sink's</text>`+"\n")
	for i, r := range rows {
		y := top + i*(2*barH+gap)
		fmt.Fprintf(&w, `<text x="10" y="%d">%s</text>`+"\n", y+barH+4, html.EscapeString(r.label))
		m := 0.0
		for _, s := range []*stat{r.g, r.p} {
			if s != nil && s.Median > m {
				m = s.Median
			}
		}
		for j, s := range []*stat{r.g, r.p} {
			name, color := "gomta", "#2b6cb0"
			if j == 1 {
				name, color = r.peer, "#999"
			}
			v := 0.0
			if s != nil {
				v = s.Median
			}
			bw := 0
			if m > 0 {
				bw = int(float64(barW) * v / m)
			}
			yy := y + j*barH
			fmt.Fprintf(&w, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, left, yy, bw, barH-2, color)
			fmt.Fprintf(&w, `<text x="%d" y="%d">%s %s</text>`+"\n", left+bw+4, yy+barH-4, html.EscapeString(name), num(v))
		}
	}
	w.WriteString("</svg>\n")
	return w.String()
}
