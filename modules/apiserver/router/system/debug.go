package system

import (
	"context"
	"net/http"

	"go.uber.org/fx"

	"github.com/wharfd/wharfd/graphviz"
	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/pipeline"
)

// DebugParams are the inputs of stage 5 debug: the boot's recorder and
// graph, which cmd supplies.
type DebugParams struct {
	fx.In

	Recorder *pipeline.Recorder
	Graph    *pipeline.Graph
}

// NewDebug is stage 5 debug: GET /debug/startup answers this boot's
// report (pipeline.Report) as JSON, or with ?format=dot the boot graph
// with each stage's state and duration and the critical path, as
// graphviz DOT (text/vnd.graphviz). Any other format is 400.
func NewDebug(p DebugParams) apiserver.Routes {
	d := &debugRouter{rec: p.Recorder, g: p.Graph}
	return apiserver.Routes{Routes: []apiserver.Route{
		{Method: http.MethodGet, Path: "/debug/startup", Handler: d.startup},
	}}
}

type debugRouter struct {
	rec *pipeline.Recorder
	g   *pipeline.Graph
}

func (d *debugRouter) startup(_ context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(r); err != nil {
		return err
	}
	rep := d.rec.Report()
	switch f := r.Form.Get("format"); f {
	case "", "json":
		return apiserver.WriteJSON(w, http.StatusOK, rep)
	case "dot":
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		return graphviz.DOT(w, d.g, &rep)
	default:
		return invalidParam(errFormat(f))
	}
}

type errFormat string

func (e errFormat) Error() string {
	return "invalid format " + `"` + string(e) + `"` + ": want json or dot"
}
