package apiserver

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestReadJSON(t *testing.T) {
	tests := []struct {
		name       string
		giveType   string
		giveBody   string
		wantErr    string // "" for none
		wantStatus int
		wantName   string
	}{
		{name: "good", giveType: "application/json", giveBody: `{"Name":"x"}`, wantName: "x"},
		{name: "charset", giveType: "application/json; charset=utf-8", giveBody: `{"Name":"x"}`, wantName: "x"},
		{name: "empty body no type", giveBody: ""},
		{name: "wrong type", giveType: "text/plain", giveBody: `{"Name":"x"}`, wantErr: "unsupported Content-Type header (text/plain): must be 'application/json'", wantStatus: 400},
		{name: "no type with body", giveBody: `{"Name":"x"}`, wantErr: "malformed Content-Type header ()", wantStatus: 400},
		{name: "malformed type", giveType: "a/b; =", giveBody: `{}`, wantErr: "malformed Content-Type header (a/b; =)", wantStatus: 400},
		{name: "malformed", giveType: "application/json", giveBody: `{"Name":`, wantErr: "invalid JSON: got EOF while reading request body", wantStatus: 400},
		{name: "syntax", giveType: "application/json", giveBody: `{"Name" "x"}`, wantErr: "invalid JSON: invalid character", wantStatus: 400},
		{name: "wrong field type", giveType: "application/json", giveBody: `{"Name":1}`, wantErr: "invalid JSON: json: cannot unmarshal number", wantStatus: 400},
		{name: "trailing value", giveType: "application/json", giveBody: `{} {}`, wantErr: "unexpected content after JSON", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(tt.giveBody))
			if tt.giveType != "" {
				r.Header.Set("Content-Type", tt.giveType)
			}
			var out struct{ Name string }
			err := ReadJSON(r, &out)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if out.Name != tt.wantName {
					t.Errorf("Name = %q, want %q", out.Name, tt.wantName)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
			}
			if s := HTTPStatus(err); s != tt.wantStatus {
				t.Errorf("status %d, want %d", s, tt.wantStatus)
			}
		})
	}
}

func TestBoolValue(t *testing.T) {
	tests := []struct {
		give       string
		want       bool
		wantOrTrue bool // BoolValueOrDefault(…, true)
	}{
		{give: "", want: false, wantOrTrue: true},
		{give: "a=", want: false, wantOrTrue: false},
		{give: "a=0", want: false, wantOrTrue: false},
		{give: "a=no", want: false, wantOrTrue: false},
		{give: "a=FALSE", want: false, wantOrTrue: false},
		{give: "a=%20none%20", want: false, wantOrTrue: false},
		{give: "a=1", want: true, wantOrTrue: true},
		{give: "a=true", want: true, wantOrTrue: true},
		{give: "a=yes", want: true, wantOrTrue: true},
		{give: "a=anything", want: true, wantOrTrue: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x?"+tt.give, nil)
			if err := ParseForm(r); err != nil {
				t.Fatal(err)
			}
			if got := BoolValue(r, "a"); got != tt.want {
				t.Errorf("BoolValue = %v, want %v", got, tt.want)
			}
			if got := BoolValueOrDefault(r, "a", true); got != tt.wantOrTrue {
				t.Errorf("BoolValueOrDefault(true) = %v, want %v", got, tt.wantOrTrue)
			}
		})
	}
}

func TestDecodeFilters(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    map[string][]string
		wantErr string
	}{
		{name: "empty", give: "", want: nil},
		{name: "map form", give: `{"type":{"container":true,"image":true},"event":{"start":true}}`, want: map[string][]string{"type": {"container", "image"}, "event": {"start"}}},
		{name: "false dropped", give: `{"type":{"container":false}}`, want: map[string][]string{"type": {}}},
		{name: "legacy list", give: `{"label":["a=b","c"]}`, want: map[string][]string{"label": {"a=b", "c"}}},
		{name: "not json", give: `type=container`, wantErr: "invalid filter"},
		{name: "wrong shape", give: `{"type":"container"}`, wantErr: "invalid filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFilters(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || HTTPStatus(err) != 400 {
					t.Fatalf("err = %v, want 400 %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitVersion(t *testing.T) {
	tests := []struct {
		give, wantPath, wantVersion string
	}{
		{give: "/v1.45/containers/json", wantPath: "/containers/json", wantVersion: "1.45"},
		{give: "/v1.45", wantPath: "/", wantVersion: "1.45"},
		{give: "/v9.99/version", wantPath: "/version", wantVersion: "9.99"},
		{give: "/version", wantPath: "/version"},
		{give: "/volumes/x", wantPath: "/volumes/x"},
		{give: "/v/x", wantPath: "/v/x"},
		{give: "/v1x/y", wantPath: "/v1x/y"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			p, v := splitVersion(tt.give)
			if p != tt.wantPath || v != tt.wantVersion {
				t.Errorf("splitVersion = %q, %q; want %q, %q", p, v, tt.wantPath, tt.wantVersion)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.40", "1.40", 0}, {"1.9", "1.40", -1}, {"1.56", "1.6", 1}, {"2", "1.99", 1}, {"1.40.0", "1.40", 0}, {"1", "1.24", -1},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			if got := CompareVersions(tt.a, tt.b); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
