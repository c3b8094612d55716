package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wharfd/wharfd/modules/config"
)

// Middleware wraps a route's handler; it sees the request after routing
// (vars filled) and may answer, decorate or pass it on.
type Middleware func(HandlerFunc) HandlerFunc

// Middlewares is the chain of step 4, outermost first: request logging,
// panic recovery, CORS (when configured) and the API version check. The
// apiserver wraps every route's handler in it.
type Middlewares struct {
	chain []Middleware
	// minVersion and maxVersion bound the API versions served.
	minVersion, maxVersion string
}

// MiddlewaresParams are the inputs of stage 4 middlewares.
type MiddlewaresParams struct {
	fx.In

	Config *config.Config
	Logger *zap.Logger
}

// NewMiddlewares is stage 4: it builds the middleware chain from the
// configuration. The API serves versions from config.MinAPIVersion
// (default 1.40, lowerable to 1.24) to 1.56. With --api-cors-header set it
// logs a warning: any page the origin serves can then drive the API from
// a browser.
func NewMiddlewares(p MiddlewaresParams) (*Middlewares, error) {
	log := p.Logger.With(zap.String("module", "apiserver"))
	minV, err := MinVersion(p.Config)
	if err != nil {
		return nil, err
	}
	m := &Middlewares{minVersion: minV, maxVersion: config.MaxAPIVersion}
	m.chain = append(m.chain, logRequests(log), recoverPanics(log))
	if origin := p.Config.CORSHeaders; origin != "" {
		log.Warn("api-cors-header is set: web pages served from this origin can use the API, with root access to this machine",
			zap.String("origin", origin))
		m.chain = append(m.chain, cors(origin))
	}
	m.chain = append(m.chain, m.checkVersion)
	return m, nil
}

// MinVersion returns the oldest API version the daemon serves:
// config.MinAPIVersion (min-api-version or DOCKER_MIN_API_VERSION),
// default 1.40, at least 1.24 and at most 1.56; outside that range it is
// an InvalidArgument error with dockerd's wording.
func MinVersion(c *config.Config) (string, error) {
	minV := c.MinAPIVersion
	if minV == "" {
		minV = config.DefaultMinAPIVersion
	}
	if VersionLess(minV, config.MinSupportedAPIVersion) || CompareVersions(minV, config.MaxAPIVersion) > 0 {
		return "", invalidParam(fmt.Errorf("invalid minimum API version (%s): must be between %s and %s", minV, config.MinSupportedAPIVersion, config.MaxAPIVersion))
	}
	return minV, nil
}

// Wrap returns h wrapped in the chain.
func (m *Middlewares) Wrap(h HandlerFunc) HandlerFunc {
	for i := len(m.chain) - 1; i >= 0; i-- {
		h = m.chain[i](h)
	}
	return h
}

// MaxVersion is the newest API version served, 1.56.
func (m *Middlewares) MaxVersion() string { return m.maxVersion }

// checkVersion refuses API versions outside the served range with
// dockerd's 400 and puts the negotiated version in the context; the /vX.Y
// prefix itself was stripped before routing (see Server).
func (m *Middlewares) checkVersion(h HandlerFunc) HandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
		v, err := checkVersion(APIVersion(ctx), m.minVersion, m.maxVersion)
		if err != nil {
			return err
		}
		return h(withAPIVersion(ctx, v), w, r, vars)
	}
}

// cors adds dockerd's CORS headers for origin to every response.
func cors(origin string) Middleware {
	return func(h HandlerFunc) HandlerFunc {
		return func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			w.Header().Add("Access-Control-Allow-Origin", origin)
			w.Header().Add("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth")
			w.Header().Add("Access-Control-Allow-Methods", "HEAD, GET, POST, DELETE, PUT, OPTIONS")
			return h(ctx, w, r, vars)
		}
	}
}

// PanicError is the error a panicking handler turns into: 500, with the
// panic's value in the message. The daemon keeps serving.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error: handler panicked: %v", e.Value)
}

// recoverPanics turns a handler's panic into a *PanicError (500) and logs
// the stack; http.ErrAbortHandler is let through, as net/http means it.
func recoverPanics(log *zap.Logger) Middleware {
	return func(h HandlerFunc) HandlerFunc {
		return func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) (err error) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it so
					panic(v)
				}
				log.Error("api handler panicked",
					zap.String("method", r.Method), zap.String("path", r.URL.Path),
					zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
				err = &PanicError{Value: v}
			}()
			return h(ctx, w, r, vars)
		}
	}
}

// maxLoggedBody is the largest JSON request body the debug log shows, as
// dockerd's (4 KiB).
const maxLoggedBody = 4096

// secretKeys are the JSON keys whose values the debug log masks, at any
// depth and in any case, as dockerd's maskSecretKeys.
var secretKeys = []string{"data", "jointoken", "password", "secret", "signingcakey", "unlockkey"}

// logRequests logs each request at debug level — method, path, status,
// duration, and for a small JSON POST body the body with secrets masked —
// when the daemon's log level is debug (it follows reloads of "debug").
func logRequests(log *zap.Logger) Middleware {
	return func(h HandlerFunc) HandlerFunc {
		return func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
			ce := log.Check(zapcore.DebugLevel, "api request")
			if ce == nil {
				return h(ctx, w, r, vars)
			}
			start := time.Now()
			var form zap.Field = zap.Skip()
			if r.Method == http.MethodPost && CheckForJSON(r) == nil && r.ContentLength <= maxLoggedBody {
				form = peekForm(r)
			}
			err := h(ctx, w, r, vars)
			status := http.StatusOK
			if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
				status = sw.status
			}
			if err != nil {
				status = HTTPStatus(err)
			}
			ce.Write(zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Int("status", status), zap.Duration("duration", time.Since(start)),
				form, zap.NamedError("error_response", err))
			return err
		}
	}
}

// peekForm reads up to maxLoggedBody bytes of the body, puts them back in
// front of the rest, and returns them as a log field with secrets masked;
// zap.Skip when the body is larger or is not a JSON object or array.
func peekForm(r *http.Request) zap.Field {
	if r.Body == nil || r.Body == http.NoBody {
		return zap.Skip()
	}
	buf := make([]byte, maxLoggedBody+1)
	n, err := io.ReadFull(r.Body, buf)
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf[:n]), r.Body), r.Body}
	if n > maxLoggedBody || (err != nil && err != io.ErrUnexpectedEOF && err != io.EOF) { //nolint:errorlint // io.ReadFull returns them bare
		return zap.Skip()
	}
	var v any
	if json.Unmarshal(buf[:n], &v) != nil {
		return zap.Skip()
	}
	maskSecrets(v)
	b, err := json.Marshal(v)
	if err != nil {
		return zap.Skip()
	}
	return zap.ByteString("form_data", b)
}

// maskSecrets replaces, in a decoded JSON value, the values of secretKeys
// with "*****".
func maskSecrets(v any) {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			maskSecrets(e)
		}
	case map[string]any:
	next:
		for k, e := range v {
			for _, s := range secretKeys {
				if strings.EqualFold(k, s) {
					v[k] = "*****"
					continue next
				}
			}
			maskSecrets(e)
		}
	}
}
