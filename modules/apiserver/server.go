package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/host"
	"github.com/wharfd/wharfd/version"
)

// Handler is the API's http.Handler: it sets the headers every response
// carries, strips /vX.Y, answers OPTIONS (CORS preflight), routes, runs
// the route's handler inside the middleware chain and writes a returned
// error as {"message": ...} with its status.
type Handler struct {
	routes *Router
	mw     *Middlewares
	log    *zap.Logger
	server string
	// options answers OPTIONS on any path: 200 with the CORS headers, as
	// dockerd's OPTIONS /{anyroute:.*}.
	options HandlerFunc
}

// NewHandler returns the API handler for the compiled routes, each
// wrapped once in the middleware chain.
func NewHandler(routes *Router, mw *Middlewares, log *zap.Logger) *Handler {
	return &Handler{
		routes:  routes.wrapped(mw.Wrap),
		mw:      mw,
		log:     log,
		server:  fmt.Sprintf("wharfd/%s (%s)", version.Version, runtime.GOOS),
		options: mw.Wrap(func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error { return nil }),
	}
}

// ServeHTTP serves one API request.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	hdr := w.Header()
	hdr.Set("Server", h.server)
	hdr.Set("Api-Version", h.mw.MaxVersion())
	hdr.Set("Ostype", runtime.GOOS)
	hdr.Set("Docker-Experimental", "false")

	path, v := splitVersion(r.URL.Path)
	ctx := withAPIVersion(r.Context(), v)
	var (
		handler HandlerFunc
		vars    map[string]string
	)
	if r.Method == http.MethodOptions {
		handler, vars = h.options, map[string]string{}
	} else {
		var ok bool
		handler, vars, ok = h.routes.Lookup(r.Method, path)
		if !ok {
			WriteError(w, errPageNotFound)
			return
		}
	}
	err := handler(ctx, w, r.WithContext(ctx), vars)
	if err == nil {
		if w.status == 0 {
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	status := HTTPStatus(err)
	if status >= 500 {
		h.log.Error("api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
	}
	if w.status != 0 {
		// The handler already answered (a stream that broke off): the
		// error can only be logged.
		if status < 500 {
			h.log.Debug("api error after the response started", zap.String("path", r.URL.Path), zap.Error(err))
		}
		return
	}
	WriteError(w, err)
}

// statusWriter records the status a handler sent, and passes Flush,
// Hijack (attach, exec) and ResponseController's Unwrap through.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection to the handler (attach, exec start).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return hj.Hijack()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Server is the API's HTTP server, serving on every listener of 2.2.
type Server struct {
	srv       *http.Server
	listeners *Listeners
	log       *zap.Logger
	wg        sync.WaitGroup
	cancel    context.CancelFunc
}

// ServerParams are the inputs of stage 2.2 apiserver. Routes is the
// compiled table of every router (stage 5 routes), so the server starts
// only once every router — and everything the routers need — is ready.
type ServerParams struct {
	fx.In

	Listeners   *Listeners
	Middlewares *Middlewares
	Routes      *Router
	Logger      *zap.Logger
	Lifecycle   fx.Lifecycle
	Shutdowner  fx.Shutdowner
	// Notifier, when provided (modules/host), sends systemd READY=1 once
	// the API serves.
	Notifier *host.Notifier `optional:"true"`
}

// shutdownGrace bounds how long Stop lets requests in flight finish.
const shutdownGrace = 5 * time.Second

// NewServer is stage 2.2 apiserver: the HTTP server over the listeners
// bound earlier. Its start hook serves every listener (clients that
// connected during the boot are answered now) and then tells the
// Notifier; a listener that fails while serving shuts the daemon down
// through fx.Shutdowner. Its stop hook stops accepting, cancels
// long-lived streams (/events) and lets other requests finish for a few
// seconds before closing their connections.
func NewServer(p ServerParams) *Server {
	log := p.Logger.With(zap.String("module", "apiserver"))
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		listeners: p.Listeners,
		log:       log,
		cancel:    cancel,
		srv: &http.Server{
			Handler: NewHandler(p.Routes, p.Middlewares, log),
			// Headers within five minutes (dockerd's bound against
			// slow clients); bodies and streams are unbounded.
			ReadHeaderTimeout: 5 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		},
	}
	s.srv.RegisterOnShutdown(cancel)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			for _, l := range s.listeners.All() {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					if err := s.srv.Serve(l.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("api listener failed", zap.String("addr", l.Addr), zap.Error(err))
						_ = p.Shutdowner.Shutdown(fx.ExitCode(1))
					}
				}()
				log.Info("api serving", zap.String("addr", l.Addr))
			}
			if p.Notifier != nil {
				p.Notifier.Ready()
			}
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, shutdownGrace)
			defer cancel()
			err := s.srv.Shutdown(ctx)
			s.cancel()
			if err != nil {
				err = s.srv.Close()
			}
			s.wg.Wait()
			return err
		},
	})
	return s
}

// Handler returns the server's http.Handler (for tests and benchmarks).
func (s *Server) Handler() http.Handler { return s.srv.Handler }
