package pipeline

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.uber.org/fx"
)

// Key identifies a value in the graph: a Go type, optionally named
// (`name:"x"`) or a value group (`group:"x"`).
type Key struct {
	Type  reflect.Type
	Name  string
	Group string
}

// String renders the key as it appears on edges: the Go type, followed by
// [name=x] or [group=x].
func (k Key) String() string {
	s := k.Type.String()
	switch {
	case k.Name != "":
		s += fmt.Sprintf("[name=%s]", k.Name)
	case k.Group != "":
		s += fmt.Sprintf("[group=%s]", k.Group)
	}
	return s
}

// Need is one input of a stage.
type Need struct {
	Key
	// Optional is true for `optional:"true"` fields of an fx.In struct.
	Optional bool
}

// Node is a stage as the graph sees it.
type Node struct {
	Stage
	// Needs are the values the constructor takes.
	Needs []Need
	// Provides are the values the constructor returns.
	Provides []Key
}

// Edge says that stage To takes a value of stage From.
type Edge struct {
	From, To string // stage IDs
	Label    string // the Key's String()
	Optional bool
}

// Graph is the boot graph: stages, and the edges between them computed from
// their constructors' signatures.
type Graph struct {
	// Modules in declaration order.
	Modules []Mod
	// Nodes in declaration order.
	Nodes []Node
	// Edges, in the boot order of From, then of To, then by Label.
	Edges []Edge
	// External are the values provided from outside the stages (fx's own
	// fx.Lifecycle and fx.Shutdowner, and what NewGraph was told of).
	External []Key

	byID  map[string]int
	order []string // topological order of stage IDs
}

var (
	typIn    = reflect.TypeOf(fx.In{})
	typOut   = reflect.TypeOf(fx.Out{})
	typError = reflect.TypeOf((*error)(nil)).Elem()
)

// fxBuiltins are the types fx itself provides to every constructor.
var fxBuiltins = []reflect.Type{
	reflect.TypeOf((*fx.Lifecycle)(nil)).Elem(),
	reflect.TypeOf((*fx.Shutdowner)(nil)).Elem(),
	reflect.TypeOf((*fx.DotGraph)(nil)).Elem(),
}

// ErrGraph is the class of every wiring error NewGraph returns.
var ErrGraph = errors.New("invalid boot graph")

// NewGraph computes the boot graph of the modules without running any
// constructor. external lists the values supplied to fx from outside the
// stages (by example value or reflect.Type); fx's own fx.Lifecycle,
// fx.Shutdowner and fx.DotGraph are always external.
//
// It returns an error wrapping ErrGraph, naming stages and types, when a
// stage needs a type nothing provides, when two stages provide one type
// (value groups excepted), when the stages form a cycle (the whole cycle is
// printed), or when a declaration is malformed.
func NewGraph(mods []Mod, external ...any) (*Graph, error) {
	g := &Graph{Modules: mods, byID: map[string]int{}}
	for _, t := range fxBuiltins {
		g.External = append(g.External, Key{Type: t})
	}
	for _, e := range external {
		t, ok := e.(reflect.Type)
		if !ok {
			t = reflect.TypeOf(e)
		}
		g.External = append(g.External, Key{Type: t})
	}
	var errs []error
	for _, m := range mods {
		for _, s := range m.Stages {
			if err := s.validate(); err != nil {
				errs = append(errs, err)
				continue
			}
			if _, dup := g.byID[s.ID()]; dup {
				errs = append(errs, fmt.Errorf("stage %s declared twice", s.ID()))
				continue
			}
			n := Node{Stage: s}
			var err error
			if n.Needs, n.Provides, err = signature(reflect.TypeOf(s.Ctor)); err != nil {
				errs = append(errs, fmt.Errorf("stage %s: %w", s.ID(), err))
				continue
			}
			g.byID[s.ID()] = len(g.Nodes)
			g.Nodes = append(g.Nodes, n)
		}
	}
	if len(errs) == 0 {
		errs = g.link()
	}
	if len(errs) == 0 {
		if err := g.sort(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrGraph, errors.Join(errs...))
	}
	return g, nil
}

// link computes the edges, reporting missing and duplicate providers.
func (g *Graph) link() []error {
	var errs []error
	providers := map[Key]string{}
	groups := map[Key][]string{}
	ext := map[Key]bool{}
	for _, k := range g.External {
		ext[k] = true
	}
	for _, n := range g.Nodes {
		for _, k := range n.Provides {
			if k.Group != "" {
				groups[k] = append(groups[k], n.ID())
				continue
			}
			if ext[k] {
				errs = append(errs, fmt.Errorf("stage %s provides %s, which is supplied from outside the stages", n.ID(), k))
				continue
			}
			if other, dup := providers[k]; dup {
				errs = append(errs, fmt.Errorf("%s is provided by two stages: %s and %s", k, other, n.ID()))
				continue
			}
			providers[k] = n.ID()
		}
	}
	seen := map[Edge]bool{}
	add := func(e Edge) {
		if e.From == e.To || seen[e] {
			return
		}
		seen[e] = true
		g.Edges = append(g.Edges, e)
	}
	for _, n := range g.Nodes {
		for _, need := range n.Needs {
			if need.Group != "" {
				for _, p := range groups[need.Key] {
					add(Edge{From: p, To: n.ID(), Label: need.String(), Optional: need.Optional})
				}
				continue
			}
			if p, ok := providers[need.Key]; ok {
				add(Edge{From: p, To: n.ID(), Label: need.String(), Optional: need.Optional})
				continue
			}
			if ext[need.Key] || need.Optional {
				continue
			}
			errs = append(errs, fmt.Errorf("stage %s needs %s, which no stage provides", n.ID(), need.Key))
		}
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Label < b.Label
	})
	return errs
}

// sort orders the stages topologically (Kahn, ties broken by declaration
// order) and reports a cycle with its whole path.
func (g *Graph) sort() error {
	indeg := make(map[string]int, len(g.Nodes))
	out := map[string][]string{}
	for _, e := range g.Edges {
		indeg[e.To]++
		out[e.From] = append(out[e.From], e.To)
	}
	var ready []int
	for i, n := range g.Nodes {
		if indeg[n.ID()] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		sort.Ints(ready)
		i := ready[0]
		ready = ready[1:]
		id := g.Nodes[i].ID()
		g.order = append(g.order, id)
		for _, to := range out[id] {
			indeg[to]--
			if indeg[to] == 0 {
				ready = append(ready, g.byID[to])
			}
		}
	}
	if len(g.order) == len(g.Nodes) {
		g.sortEdges()
		return nil
	}
	return fmt.Errorf("cycle: %s", strings.Join(g.findCycle(out, indeg), " → "))
}

// sortEdges orders the edges by the boot order of their ends, so that
// "3.7 data-root" comes before "3.11 graphdriver" (a string sort would not).
func (g *Graph) sortEdges() {
	pos := make(map[string]int, len(g.order))
	for i, id := range g.order {
		pos[id] = i
	}
	sort.SliceStable(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.From != b.From {
			return pos[a.From] < pos[b.From]
		}
		if a.To != b.To {
			return pos[a.To] < pos[b.To]
		}
		return a.Label < b.Label
	})
}

// findCycle returns one cycle among the stages left with incoming edges,
// first stage repeated at the end.
func (g *Graph) findCycle(out map[string][]string, indeg map[string]int) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(id string) bool
	visit = func(id string) bool {
		color[id] = grey
		stack = append(stack, id)
		for _, to := range out[id] {
			switch color[to] {
			case grey:
				i := slices.Index(stack, to)
				cycle = append(append([]string{}, stack[i:]...), to)
				return true
			case white:
				if visit(to) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return false
	}
	for _, n := range g.Nodes {
		if indeg[n.ID()] > 0 && color[n.ID()] == white && visit(n.ID()) {
			return cycle
		}
	}
	return nil
}

// Node returns the stage with the given ID.
func (g *Graph) Node(id string) (Node, bool) {
	i, ok := g.byID[id]
	if !ok {
		return Node{}, false
	}
	return g.Nodes[i], true
}

// Order returns the stage IDs in a topological order: every stage after
// all the stages it needs.
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Dependents returns, in topological order, every stage that needs id
// directly or transitively.
func (g *Graph) Dependents(id string) []string {
	hit := map[string]bool{id: true}
	var deps []string
	for _, n := range g.order {
		if hit[n] {
			continue
		}
		for _, e := range g.Edges {
			if e.To == n && hit[e.From] {
				hit[n] = true
				deps = append(deps, n)
				break
			}
		}
	}
	return deps
}

// Options returns the fx options providing every stage, their hooks
// reported to rec (nil for none; see Mod.Fx).
func (g *Graph) Options(rec *Recorder) fx.Option {
	opts := make([]fx.Option, 0, len(g.Modules))
	for _, m := range g.Modules {
		opts = append(opts, m.Fx(rec))
	}
	return fx.Options(opts...)
}

// signature reads a constructor's needs and provides.
func signature(ft reflect.Type) ([]Need, []Key, error) {
	var needs []Need
	for i := 0; i < ft.NumIn(); i++ {
		t := ft.In(i)
		if embeds(t, typIn) {
			in, err := inFields(t)
			if err != nil {
				return nil, nil, err
			}
			needs = append(needs, in...)
			continue
		}
		needs = append(needs, Need{Key: Key{Type: t}})
	}
	var provides []Key
	for i := 0; i < ft.NumOut(); i++ {
		t := ft.Out(i)
		if t == typError {
			if i != ft.NumOut()-1 {
				return nil, nil, errors.New("error must be the last result")
			}
			continue
		}
		if embeds(t, typOut) {
			out, err := outFields(t)
			if err != nil {
				return nil, nil, err
			}
			provides = append(provides, out...)
			continue
		}
		provides = append(provides, Key{Type: t})
	}
	if len(provides) == 0 {
		return nil, nil, errors.New("provides nothing; return a token type so dependents can order on it")
	}
	return needs, provides, nil
}

// embeds reports whether struct type t embeds marker (fx.In or fx.Out).
func embeds(t reflect.Type, marker reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Anonymous && f.Type == marker {
			return true
		}
	}
	return false
}

func inFields(t reflect.Type) ([]Need, error) {
	var needs []Need
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type == typIn {
			continue
		}
		if !f.IsExported() {
			return nil, fmt.Errorf("fx.In field %s.%s is unexported", t, f.Name)
		}
		if embeds(f.Type, typIn) {
			sub, err := inFields(f.Type)
			if err != nil {
				return nil, err
			}
			needs = append(needs, sub...)
			continue
		}
		k := Key{Type: f.Type, Name: f.Tag.Get("name")}
		if g := f.Tag.Get("group"); g != "" {
			if f.Type.Kind() != reflect.Slice {
				return nil, fmt.Errorf("fx.In field %s.%s: a group needs a slice", t, f.Name)
			}
			k = Key{Type: f.Type.Elem(), Group: strings.Split(g, ",")[0]}
		}
		needs = append(needs, Need{Key: k, Optional: f.Tag.Get("optional") == "true"})
	}
	return needs, nil
}

func outFields(t reflect.Type) ([]Key, error) {
	var keys []Key
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type == typOut {
			continue
		}
		if !f.IsExported() {
			return nil, fmt.Errorf("fx.Out field %s.%s is unexported", t, f.Name)
		}
		if embeds(f.Type, typOut) {
			sub, err := outFields(f.Type)
			if err != nil {
				return nil, err
			}
			keys = append(keys, sub...)
			continue
		}
		k := Key{Type: f.Type, Name: f.Tag.Get("name")}
		if g := f.Tag.Get("group"); g != "" {
			parts := strings.Split(g, ",")
			elem := f.Type
			if slices.Contains(parts[1:], "flatten") {
				if f.Type.Kind() != reflect.Slice {
					return nil, fmt.Errorf("fx.Out field %s.%s: flatten needs a slice", t, f.Name)
				}
				elem = f.Type.Elem()
			}
			k = Key{Type: elem, Group: parts[0]}
		}
		keys = append(keys, k)
	}
	return keys, nil
}
