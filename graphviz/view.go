package graphviz

import (
	"cmp"
	"errors"
	"slices"

	"github.com/wharfd/wharfd/pipeline"
)

// errNoGraph is returned when DOT or JSON is given a nil graph.
var errNoGraph = errors.New("render boot graph: nil graph")

// view is a graph and an optional report, indexed for rendering. Its maps
// are for lookups only: output order always comes from slices.
type view struct {
	g   *pipeline.Graph
	rep *pipeline.Report // nil without a report

	stages       map[string]pipeline.StageReport
	critical     map[string]bool
	criticalEdge map[[2]string]bool // consecutive critical-path stages
	notStarted   map[string]bool
	external     map[pipeline.Key]bool
}

func newView(g *pipeline.Graph, rep *pipeline.Report) *view {
	v := &view{
		g:            g,
		rep:          rep,
		stages:       map[string]pipeline.StageReport{},
		critical:     map[string]bool{},
		criticalEdge: map[[2]string]bool{},
		notStarted:   map[string]bool{},
		external:     map[pipeline.Key]bool{},
	}
	for _, k := range g.External {
		v.external[k] = true
	}
	if rep == nil {
		return v
	}
	for _, s := range rep.Stages {
		v.stages[s.ID] = s
	}
	for i, id := range rep.CriticalPath {
		v.critical[id] = true
		if i > 0 {
			v.criticalEdge[[2]string{rep.CriticalPath[i-1], id}] = true
		}
	}
	for _, id := range rep.NotStarted {
		v.notStarted[id] = true
	}
	return v
}

// stage returns the report of the stage id, if a report has one.
func (v *view) stage(id string) (pipeline.StageReport, bool) {
	s, ok := v.stages[id]
	return s, ok
}

// cluster is one module's stages, in declaration order.
type cluster struct {
	module string
	nodes  []pipeline.Node
}

// clusters groups the nodes by module: the graph's modules in declaration
// order, then any module only a node names (a hand-built Graph), in the
// order of the nodes. Nodes without a module come last, under module "".
func (v *view) clusters() []cluster {
	var names []string
	for _, m := range v.g.Modules {
		if !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	for _, n := range v.g.Nodes {
		if n.Module() != "" && !slices.Contains(names, n.Module()) {
			names = append(names, n.Module())
		}
	}
	names = append(names, "")
	var cs []cluster
	for _, name := range names {
		c := cluster{module: name}
		for _, n := range v.g.Nodes {
			if n.Module() == name {
				c.nodes = append(c.nodes, n)
			}
		}
		if len(c.nodes) > 0 {
			cs = append(cs, c)
		}
	}
	return cs
}

// edges returns the graph's edges sorted by From, To, Label, then required
// before optional. pipeline.NewGraph sorts them already; sorting a copy
// keeps the output stable for a hand-built Graph too.
func (v *view) edges() []pipeline.Edge {
	es := slices.Clone(v.g.Edges)
	slices.SortStableFunc(es, func(a, b pipeline.Edge) int {
		return cmp.Or(
			cmp.Compare(a.From, b.From),
			cmp.Compare(a.To, b.To),
			cmp.Compare(a.Label, b.Label),
			boolCompare(a.Optional, b.Optional),
		)
	})
	return es
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// externalNeeds returns the values n takes from outside the stages
// (fx.Lifecycle, the logger, …), as their edge labels, in need order.
func (v *view) externalNeeds(n pipeline.Node) []string {
	var ks []string
	for _, need := range n.Needs {
		if v.external[need.Key] && !slices.Contains(ks, need.String()) {
			ks = append(ks, need.String())
		}
	}
	return ks
}
