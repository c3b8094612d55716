package graphviz

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/wharfd/wharfd/pipeline"
)

// Colours of the DOT rendering.
const (
	colCritical = "#e6550d" // critical path: nodes' outline and edges
	colEdge     = "#555555"
	colCluster  = "#9e9e9e"
	colOK       = "#e8f5e9"
	colRunning  = "#fff8e1"
	colFailed   = "#d32f2f"
	colFailedBg = "#fde0e0"
	colFailedFg = "#8e0000"
	colGrey     = "#9e9e9e"
	colGreyBg   = "#eeeeee"
	colGreyFg   = "#757575"
)

// maxReason is how many characters of a skip reason or an error a node's
// label shows; the tooltip carries the whole text.
const maxReason = 60

// DOT writes g to w as a Graphviz digraph named wharfd, laid out left to
// right (rankdir=LR: the boot reads as a timeline, and the type labels sit
// on horizontal edges without widening every rank).
//
// Each module is a cluster ("cluster_<module>", labelled with the module
// name) holding its stages in declaration order. A stage's node is
// labelled with its ID ("3.11 graphdriver"; a stage without a step shows
// "— <name>") and its tooltip is the stage's Doc. Each edge goes from the
// stage providing a value to the stage taking it, labelled with the value's
// Go type (pipeline.Edge.Label); edges of optional needs are dashed.
//
// Values from outside the stages (fx.Lifecycle, the logger, …) are not
// drawn: nearly every stage takes one, and a node for each would pull an
// edge into most of the graph without ordering anything. They are listed
// in the tooltip of each stage that takes them instead, and in the JSON
// form.
//
// rep may be nil. With a report, each node gets a second line with the
// stage's duration (constructor plus OnStart, "30.2ms") and, for a skipped
// or failed stage, the reason or error (shortened; whole in the tooltip).
// Stages on the critical path, and the edges between consecutive ones, are
// drawn bold in orange; failed stages are red, skipped stages grey, and
// stages that never started (pending) have a dashed grey outline. The
// graph is labelled with the critical path line and the failure, if any.
//
// The output is deterministic byte for byte. Every ID and string is
// quoted, with quotes and backslashes escaped and line breaks written as
// \n. DOT returns an error if g is nil or writing to w fails.
func DOT(w io.Writer, g *pipeline.Graph, rep *pipeline.Report) error {
	if g == nil {
		return errNoGraph
	}
	v := newView(g, rep)
	var b strings.Builder
	b.WriteString("digraph wharfd {\n")
	b.WriteString("\tgraph [rankdir=\"LR\", fontname=\"Helvetica\", fontsize=\"11\", nodesep=\"0.25\", ranksep=\"0.5\"];\n")
	b.WriteString("\tnode [shape=\"box\", style=\"rounded,filled\", fillcolor=\"white\", fontname=\"Helvetica\", fontsize=\"11\"];\n")
	fmt.Fprintf(&b, "\tedge [fontname=\"Helvetica\", fontsize=\"9\", color=%s, fontcolor=%s, arrowsize=\"0.7\"];\n", quote(colEdge), quote(colEdge))
	for _, c := range v.clusters() {
		indent := "\t"
		if c.module != "" {
			b.WriteString("\n")
			fmt.Fprintf(&b, "\tsubgraph %s {\n", quote("cluster_"+c.module))
			writeAttrs(&b, "\t\t", []attr{
				{"label", c.module},
				{"labeljust", "l"},
				{"style", "rounded"},
				{"color", colCluster},
				{"fontcolor", colGreyFg},
			})
			indent = "\t\t"
		} else {
			b.WriteString("\n")
		}
		for _, n := range c.nodes {
			fmt.Fprintf(&b, "%s%s [%s];\n", indent, quote(n.ID()), attrList(v.nodeAttrs(n)))
		}
		if c.module != "" {
			b.WriteString("\t}\n")
		}
	}
	if edges := v.edges(); len(edges) > 0 {
		b.WriteString("\n")
		for _, e := range edges {
			fmt.Fprintf(&b, "\t%s -> %s [%s];\n", quote(e.From), quote(e.To), attrList(v.edgeAttrs(e)))
		}
	}
	// The graph's own label comes last: a subgraph inherits the graph
	// attributes set before it, and the clusters must not repeat it.
	if label := v.graphLabel(); label != "" {
		b.WriteString("\n")
		writeAttrs(&b, "\t", []attr{{"label", label}, {"labelloc", "b"}, {"labeljust", "l"}})
	}
	b.WriteString("}\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write dot: %w", err)
	}
	return nil
}

// attr is one DOT attribute; its value is quoted when written.
type attr struct{ key, value string }

// set sets key to value in attrs: in place when the key is there already,
// else appended, so that each key appears once and in a stable place.
func set(attrs []attr, key, value string) []attr {
	for i := range attrs {
		if attrs[i].key == key {
			attrs[i].value = value
			return attrs
		}
	}
	return append(attrs, attr{key, value})
}

// attrList renders attributes for a node or edge statement.
func attrList(attrs []attr) string {
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		parts[i] = a.key + "=" + quote(a.value)
	}
	return strings.Join(parts, ", ")
}

// writeAttrs writes attributes as statements of the enclosing graph, one
// per line.
func writeAttrs(b *strings.Builder, indent string, attrs []attr) {
	for _, a := range attrs {
		fmt.Fprintf(b, "%s%s=%s;\n", indent, a.key, quote(a.value))
	}
}

// nodeAttrs styles one stage.
func (v *view) nodeAttrs(n pipeline.Node) []attr {
	id := n.ID()
	title := id
	if n.Step == "" {
		title = "— " + n.Name
	}
	label := []string{title}
	tip := []string{id}
	if n.Doc != "" {
		tip = append(tip, n.Doc)
	}
	if ext := v.externalNeeds(n); len(ext) > 0 {
		tip = append(tip, "from outside the stages: "+strings.Join(ext, ", "))
	}
	var style []attr
	if s, ok := v.stage(id); ok {
		switch s.State {
		case pipeline.OK:
			label = append(label, pipeline.FormatDuration(s.Duration()))
			style = []attr{{"fillcolor", colOK}}
		case pipeline.Running:
			label = append(label, "running "+pipeline.FormatDuration(s.Duration()))
			style = []attr{{"fillcolor", colRunning}}
		case pipeline.Failed:
			label = append(label, pipeline.FormatDuration(s.Duration()), "failed: "+shorten(s.Reason, maxReason))
			style = []attr{{"color", colFailed}, {"fillcolor", colFailedBg}, {"fontcolor", colFailedFg}}
		case pipeline.Skipped:
			label = append(label, pipeline.FormatDuration(s.Duration()), "skipped: "+shorten(s.Reason, maxReason))
			style = []attr{{"color", colGrey}, {"fillcolor", colGreyBg}, {"fontcolor", colGreyFg}}
		default: // pending: never started
			label = append(label, "not started")
			style = []attr{{"style", "rounded,filled,dashed"}, {"color", colGrey}, {"fontcolor", colGreyFg}}
		}
		if s.State == pipeline.Pending {
			tip = append(tip, "pending: not started")
		} else {
			tip = append(tip, fmt.Sprintf("%s: constructor %s, OnStart %s", s.State, pipeline.FormatDuration(s.Constructor), pipeline.FormatDuration(s.OnStart)))
		}
		if s.Reason != "" {
			tip = append(tip, s.Reason)
		}
		if v.critical[id] {
			tip = append(tip, "on the critical path")
			style = set(style, "penwidth", "2.5")
			if s.State != pipeline.Failed {
				style = set(style, "color", colCritical)
			}
		}
	}
	attrs := []attr{{"label", strings.Join(label, "\n")}, {"tooltip", strings.Join(tip, "\n")}}
	return append(attrs, style...)
}

// edgeAttrs styles one edge.
func (v *view) edgeAttrs(e pipeline.Edge) []attr {
	tip := fmt.Sprintf("%s → %s: %s", e.From, e.To, e.Label)
	if e.Optional {
		tip += " (optional)"
	}
	attrs := []attr{{"label", e.Label}, {"tooltip", tip}}
	crit := v.criticalEdge[[2]string{e.From, e.To}]
	switch {
	case crit && e.Optional:
		attrs = append(attrs, attr{"style", "dashed,bold"})
	case crit:
		attrs = append(attrs, attr{"style", "bold"})
	case e.Optional:
		attrs = append(attrs, attr{"style", "dashed"})
	}
	if crit {
		attrs = append(attrs, attr{"color", colCritical}, attr{"fontcolor", colCritical}, attr{"penwidth", "2.5"})
	}
	return attrs
}

// graphLabel is the caption of a rendering with a report: the critical
// path, and the failed stage with its error.
func (v *view) graphLabel() string {
	if v.rep == nil {
		return ""
	}
	var lines []string
	if len(v.rep.CriticalPath) > 0 {
		lines = append(lines, v.rep.CriticalPathLine())
	}
	if v.rep.Failed != "" {
		line := "stage " + v.rep.Failed + " failed"
		if v.rep.Error != "" {
			line += ": " + shorten(v.rep.Error, 2*maxReason)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// shorten cuts s to at most n characters, ending in "…" when cut, and
// keeps only its first line.
func shorten(s string, n int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " …"
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// quote returns s as a DOT double-quoted string. Backslashes and quotes are
// escaped, so that a backslash in a label is shown as itself rather than
// read as a Graphviz escape (\N, \G, \l); each line break (\n, \r\n or \r)
// becomes \n, a centred line break in labels and tooltips; other control
// characters become spaces and invalid UTF-8 becomes U+FFFD, since
// Graphviz reads input as UTF-8.
func quote(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		case c == '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString(`\n`)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20 || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
