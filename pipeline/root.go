package pipeline

import (
	"fmt"
	"reflect"
)

// Skipper is implemented by a stage's provided value when the stage may not
// apply on this host (AppArmor absent, userns-remap off, bridge disabled).
// A non-empty SkipReason marks the stage skipped, with that reason, in the
// boot report; a skipped stage is not a failure and its dependents run.
type Skipper interface {
	SkipReason() string
}

// Root returns a function for fx.Invoke that takes every value the stages
// provide, so that fx constructs every stage, and that records in rec which
// stages report themselves skipped (see Skipper). cmd/wharfd is the only
// caller: `fx.Invoke(graph.Root(rec))`.
func (g *Graph) Root(rec *Recorder) any {
	fields := []reflect.StructField{{Name: "In", Type: typIn, Anonymous: true}}
	var owners []string // stage ID per field (after the fx.In field); "" for groups
	groups := map[Key]bool{}
	for _, n := range g.Nodes {
		for _, k := range n.Provides {
			f := reflect.StructField{Name: fmt.Sprintf("V%d", len(owners)), Type: k.Type}
			switch {
			case k.Group != "":
				if groups[k] {
					continue
				}
				groups[k] = true
				f.Type = reflect.SliceOf(k.Type)
				f.Tag = reflect.StructTag(fmt.Sprintf(`group:%q`, k.Group))
				owners = append(owners, "")
			case k.Name != "":
				f.Tag = reflect.StructTag(fmt.Sprintf(`name:%q`, k.Name))
				owners = append(owners, n.ID())
			default:
				owners = append(owners, n.ID())
			}
			fields = append(fields, f)
		}
	}
	in := reflect.StructOf(fields)
	fn := reflect.MakeFunc(reflect.FuncOf([]reflect.Type{in}, nil, false), func(args []reflect.Value) []reflect.Value {
		v := args[0]
		for i, owner := range owners {
			if owner == "" {
				continue
			}
			val := v.Field(i + 1)
			if !val.CanInterface() {
				continue
			}
			if s, ok := val.Interface().(Skipper); ok && !isNil(val) {
				if reason := s.SkipReason(); reason != "" {
					rec.skip(owner, reason)
				}
			}
		}
		return nil
	})
	return fn.Interface()
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}
