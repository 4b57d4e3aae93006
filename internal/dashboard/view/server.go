package view

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/clima-dev/clima/internal/apierr"

	"github.com/clima-dev/clima/internal/dashboard"
)

//go:embed web
var web embed.FS

var page = template.Must(template.New("index.html.tmpl").
	Funcs(template.FuncMap{"add": func(a uint32, b uint32) uint32 { return a + b }}).
	ParseFS(web, "web/index.html.tmpl"))

// Server serves the dashboard file as a read-only page. It reads the file
// again when it changes, so an edit shows on the next reload.
type Server struct {
	path    string
	sources dashboard.Datasources
	log     *slog.Logger

	mu      sync.Mutex
	board   *dashboard.Board
	modTime time.Time
}

// NewServer reads the dashboard file at path; sources are the clients of
// the datasources its panels name, by uid. The server only reads them.
func NewServer(path string, sources dashboard.Datasources, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{path: path, sources: sources, log: log}
	if _, err := s.current(); err != nil {
		return nil, err
	}
	return s, nil
}

// current is the board of the file as it is now.
func (s *Server) current() (*dashboard.Board, error) {
	info, err := os.Stat(s.path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.board != nil && info.ModTime().Equal(s.modTime) {
		return s.board, nil
	}
	b, err := dashboard.Load(s.path)
	if err != nil {
		return nil, err
	}
	s.board, s.modTime = b, info.ModTime()
	return b, nil
}

// Handler serves the page, its data and its static files.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(web, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /api/panels", s.servePanels)
	mux.HandleFunc("GET /api/panels/{id}", s.servePanel)
	return mux
}

// pagePanel is a panel's place and title, for the template.
type pagePanel struct {
	dashboard.Panel
	Unsupported []string // the view's, the panel's own among them
	Streaming   bool
	StreamMs    int
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	b, err := s.current()
	if err != nil {
		http.Error(w, s.path+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	panels := make([]pagePanel, len(b.Panels))
	for i, p := range b.Panels {
		panels[i] = pagePanel{Panel: p, Unsupported: Unsupported(p)}
		for _, t := range p.Targets {
			if t.Redis != nil && t.Redis.Streaming {
				panels[i].Streaming = true
				if ms := t.Redis.StreamingInterval; ms > 0 && (panels[i].StreamMs == 0 || ms < panels[i].StreamMs) {
					panels[i].StreamMs = ms
				}
			}
		}
		if panels[i].Streaming && panels[i].StreamMs == 0 {
			panels[i].StreamMs = 1000 // the plugin's default interval
		}
	}
	refresh, _ := time.ParseDuration(b.Refresh)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, map[string]any{"Board": b, "Panels": panels, "RefreshMs": refresh.Milliseconds()}); err != nil {
		s.log.Warn("dashboard page", "error", err)
	}
}

func (s *Server) servePanels(w http.ResponseWriter, r *http.Request) {
	b, err := s.current()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": s.path + ": " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"title": b.Title, "panels": Render(r.Context(), b, s.sources)})
}

func (s *Server) servePanel(w http.ResponseWriter, r *http.Request) {
	b, err := s.current()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": s.path + ": " + err.Error()})
		return
	}
	id, _ := strconv.ParseUint(r.PathValue("id"), 10, 32)
	for _, p := range b.Panels {
		if uint64(p.ID) == id {
			writeJSON(w, http.StatusOK, RenderPanel(r.Context(), p, s.window(b)))
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no panel " + r.PathValue("id")})
}

// writeJSON answers as every clima endpoint does; the page polls, so no
// answer may be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	apierr.WriteJSON(w, status, v)
}

// window is the datasources with the board's time range.
func (s *Server) window(b *dashboard.Board) dashboard.Datasources {
	ds := s.sources
	ds.Window = b.Window
	return ds
}
