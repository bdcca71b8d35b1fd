package results

import (
	"fmt"
	"strings"

	"github.com/egressd/egressd/bench/load"
)

// h2Ratio is one row of the inspected-HTTP/2 table (issue 17): requests
// per proxy CPU-second of one group divided by another's. The figures come
// from one run of the mitm-h2 mode per proxy and round, so numerator and
// denominator share their rounds.
type h2Ratio struct {
	text                 string
	numTarget, numResult string
	denTarget, denResult string
}

var h2Ratios = []h2Ratio{
	{text: "egressd h2, 16 streams on one tunnel ÷ egressd HTTP/1.1, 16 keep-alive tunnels",
		numTarget: Main, numResult: load.ResultMITMH2, denTarget: Main, denResult: load.ResultMITMKeepAlive},
	{text: "egressd h2, 16 streams on one tunnel ÷ Squid ssl_bump with the same client (falls back to HTTP/1.1)",
		numTarget: Main, numResult: load.ResultMITMH2, denTarget: Squid, denResult: load.ResultMITMH2},
	{text: "egressd HTTP/1.1 keep-alive ÷ Squid ssl_bump HTTP/1.1 keep-alive",
		numTarget: Main, numResult: load.ResultMITMKeepAlive, denTarget: Squid, denResult: load.ResultMITMKeepAlive},
}

func writeH2Ratios(b *strings.Builder, groups []Group) {
	if find(groups, load.ResultMITMH2, Main) == nil {
		return
	}
	b.WriteString("## Inspected HTTP/2 (issue 17)\n\nRequests per proxy CPU-second, `/small` GETs, 16 in flight. " +
		"No bound is set; the ratios say what HTTP/2 inside a bump costs or saves against HTTP/1.1.\n\n" +
		"| ratio | measured |\n|---|---:|\n")
	get := primaryFor(load.ResultMITMH2).get
	for _, r := range h2Ratios {
		v, ok := ratio(get, find(groups, r.numResult, r.numTarget), find(groups, r.denResult, r.denTarget))
		cell := "no data (a proxy was not measured or had errors)"
		if ok {
			cell = fmt.Sprintf("%.2f×", v)
		}
		fmt.Fprintf(b, "| %s | %s |\n", r.text, cell)
	}
	b.WriteString("\n")
}
