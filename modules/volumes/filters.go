package volumes

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Filters are the filters of a list or prune request, key → values, as
// apiserver.DecodeFilters returns them.
type Filters map[string][]string

// acceptedListFilters are the filters of GET /volumes, as dockerd.
var acceptedListFilters = map[string]bool{"dangling": true, "name": true, "driver": true, "label": true}

// acceptedPruneFilters are the filters of POST /volumes/prune, as dockerd.
var acceptedPruneFilters = map[string]bool{"label": true, "label!": true, "all": true}

// validate refuses a key not in accepted: "invalid filter 'key'".
func (f Filters) validate(accepted map[string]bool) error {
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if !accepted[k] {
			return invalidFilter{key: k}
		}
	}
	return nil
}

func (f Filters) contains(k string) bool {
	_, ok := f[k]
	return ok
}

// match reports whether src equals one of k's values or matches one as an
// unanchored regular expression (dockerd's Args.Match); true without
// values.
func (f Filters) match(k, src string) bool {
	vals := f[k]
	if len(vals) == 0 || slices.Contains(vals, src) {
		return true
	}
	for _, v := range vals {
		if ok, err := regexp.MatchString(v, src); err == nil && ok {
			return true
		}
	}
	return false
}

// matchKVList reports whether labels have every key (and value, for
// key=value) of k's values (dockerd's Args.MatchKVList): true without
// values, false for no labels.
func (f Filters) matchKVList(k string, labels map[string]string) bool {
	vals := f[k]
	if len(vals) == 0 {
		return true
	}
	if len(labels) == 0 {
		return false
	}
	for _, v := range vals {
		key, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[key]
		if !ok || hasValue && got != want {
			return false
		}
	}
	return true
}

// boolean reads k as dockerd's Args.GetBoolOrDefault: absent is def;
// "1"/"true" and "0"/"false" (no mix) are the values; anything else,
// none or both is "invalid filter 'k=[v]'".
func (f Filters) boolean(k string, def bool) (bool, error) {
	vals, ok := f[k]
	if !ok {
		return def, nil
	}
	if len(vals) == 0 {
		return def, invalidFilter{key: k}
	}
	isFalse := slices.Contains(vals, "0") || slices.Contains(vals, "false")
	isTrue := slices.Contains(vals, "1") || slices.Contains(vals, "true")
	if isFalse == isTrue {
		return def, invalidFilter{key: k, values: vals}
	}
	return isTrue, nil
}

// volumeFilter is a predicate over a volume and its reference count.
type volumeFilter func(v *vol, refs int) bool

// compile validates f against accepted and returns its predicate, as
// dockerd's filtersToBy: driver (exact), name (Match), label and label!
// (MatchKVList), dangling (no references).
func (f Filters) compile(accepted map[string]bool) (volumeFilter, error) {
	if err := f.validate(accepted); err != nil {
		return nil, err
	}
	dangling, byDangling := false, f.contains("dangling")
	if byDangling {
		var err error
		if dangling, err = f.boolean("dangling", false); err != nil {
			return nil, err
		}
	}
	return func(v *vol, refs int) bool {
		if drivers := f["driver"]; len(drivers) > 0 && !slices.Contains(drivers, v.meta.Driver) {
			return false
		}
		if f.contains("name") && !f.match("name", v.meta.Name) {
			return false
		}
		if !f.matchKVList("label", v.meta.Labels) {
			return false
		}
		if f.contains("label!") && f.matchKVList("label!", v.meta.Labels) {
			return false
		}
		if byDangling && (refs == 0) != dangling {
			return false
		}
		return true
	}, nil
}

// pruneFilters applies dockerd's withPrune to f: "all" takes one boolean
// ("invalid filter 'all=[a b]': only one value is expected", "invalid
// filter 'all': strconv.ParseBool: …"); unless it is true, only anonymous
// volumes (label com.docker.volume.anonymous) are candidates. f is not
// modified.
func (f Filters) pruneFilters() (Filters, error) {
	out := maps.Clone(f)
	if out == nil {
		out = Filters{}
	}
	all := f["all"]
	switch {
	case len(all) > 1:
		return nil, invalidf("invalid filter 'all=%s': only one value is expected", all)
	case len(all) == 1:
		ok, err := strconv.ParseBool(all[0])
		if err != nil {
			return nil, invalidf("invalid filter 'all': %w", err)
		}
		if ok {
			return out, nil
		}
	}
	out["label"] = append(slices.Clone(out["label"]), AnonymousLabel)
	return out, nil
}
