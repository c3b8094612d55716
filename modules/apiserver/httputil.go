package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// CheckForJSON checks that the request body is JSON, as dockerd's
// httputils.CheckForJSON: no Content-Type is fine for an empty body, else
// the media type must be application/json. Errors are InvalidArgument
// (400): "unsupported Content-Type header (text/plain): must be
// 'application/json'", or "malformed Content-Type header (x): ..." when
// the header does not parse.
func CheckForJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0) {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return invalidParam(fmt.Errorf("malformed Content-Type header (%s): %w", ct, err))
	}
	if mt != "application/json" {
		return invalidParam(fmt.Errorf("unsupported Content-Type header (%s): must be 'application/json'", ct))
	}
	return nil
}

// ReadJSON checks the request's Content-Type (CheckForJSON) and decodes
// its body, one JSON value, into out. An empty body leaves out untouched
// and is no error (dockerd's ReadJSON). Malformed input is InvalidArgument
// (400): "invalid JSON: <decoder error>", "invalid JSON: got EOF while
// reading request body" for a truncated body, and "unexpected content
// after JSON" when more than one value follows.
func ReadJSON(r *http.Request, out any) error {
	if err := CheckForJSON(r); err != nil {
		return err
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	defer r.Body.Close()
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalidParam(errors.New("invalid JSON: got EOF while reading request body"))
		}
		return invalidParam(fmt.Errorf("invalid JSON: %w", err))
	}
	if dec.More() {
		return invalidParam(errors.New("unexpected content after JSON"))
	}
	return nil
}

// WriteJSON writes v as the JSON response with the given status, with
// Content-Type application/json and HTML characters left unescaped, as
// dockerd's httputils.WriteJSON.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ParseForm parses the query (and a form body) into r.Form, as dockerd's
// httputils.ParseForm: a POST without a form Content-Type is no error; a
// malformed query is InvalidArgument (400).
func ParseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil && !strings.HasPrefix(err.Error(), "mime:") {
		return invalidParam(err)
	}
	return nil
}

// BoolValue reads the form value k as dockerd's httputils.BoolValue does:
// absent, "", "0", "no", "false" and "none" (any case, spaces trimmed) are
// false, anything else true. Call ParseForm first.
func BoolValue(r *http.Request, k string) bool {
	switch strings.ToLower(strings.TrimSpace(r.FormValue(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// BoolValueOrDefault is BoolValue, or d when the form has no value k at
// all (dockerd's BoolValueOrDefault). Call ParseForm first.
func BoolValueOrDefault(r *http.Request, k string, d bool) bool {
	if _, ok := r.Form[k]; !ok {
		return d
	}
	return BoolValue(r, k)
}

// Int64ValueOrDefault parses the form value k as a base-10 int64, or
// returns d when it is absent or empty. A malformed value is
// InvalidArgument (400) naming the parameter. Call ParseForm first.
func Int64ValueOrDefault(r *http.Request, k string, d int64) (int64, error) {
	v := r.Form.Get(k)
	if v == "" {
		return d, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, invalidParam(fmt.Errorf("invalid value for %s: %q: %w", k, v, errors.Unwrap(err)))
	}
	return n, nil
}

// DecodeFilters decodes the "filters" query parameter of list and event
// endpoints into key → values, accepting both forms dockerd accepts: the
// current {"key":{"value":true}} and the legacy {"key":["value"]}. Values
// of one key are returned sorted... in the order they appear for the
// legacy form, and sorted for the map form. An empty string is no
// filters (nil). Malformed input is InvalidArgument (400), "invalid
// filter: ..." — dockerd's wording for a filter that does not decode.
func DecodeFilters(s string) (map[string][]string, error) {
	if s == "" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, invalidParam(fmt.Errorf("invalid filter: %w", err))
	}
	out := make(map[string][]string, len(raw))
	for k, v := range raw {
		var set map[string]bool
		if err := json.Unmarshal(v, &set); err == nil {
			vals := make([]string, 0, len(set))
			for val, on := range set {
				if on {
					vals = append(vals, val)
				}
			}
			slices.Sort(vals)
			out[k] = vals
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, invalidParam(fmt.Errorf("invalid filter: %q: want an object of values to true, or a list of values", k))
		}
		out[k] = list
	}
	return out, nil
}

// Filters is DecodeFilters of the request's "filters" form value. Call
// ParseForm first.
func Filters(r *http.Request) (map[string][]string, error) {
	return DecodeFilters(r.Form.Get("filters"))
}
