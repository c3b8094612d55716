// Package graphviz renders wharfd's boot graph (a pipeline.Graph) as text:
// Graphviz DOT for people and JSON for programs, optionally overlaid with
// the record of one boot (a pipeline.Report).
//
// It is what `wharfd --dump-graph[=dot|json]` prints and what `make graph`
// feeds to the system `dot` to draw boot.svg. It writes text only: no cgo,
// no wasm, and no goccy/go-graphviz in the daemon (DESIGN §4), so rendering
// costs the daemon nothing at start.
//
// Both forms are deterministic byte for byte for a given graph and report:
// modules and stages come out in declaration order, edges sorted by source,
// target and type, so the output can be compared with a golden file.
package graphviz
