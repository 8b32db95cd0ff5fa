package httpapi

import (
	"errors"
	"net/http"
	"os"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/pbx/recording"
)

// RecordingOpener opens the recording a signed link names (pbx/recording.Library).
type RecordingOpener interface {
	Open(file, exp, sig string) (*os.File, error)
}

// Recordings handles GET /v1/recordings/{file}?exp=…&sig=…: the call recordings the notes
// in amoCRM link to, as mp3 with Range support (amoCRM's player seeks). A wrong or expired
// signature answers 403, a name that is no call id (a traversal attempt) or a recording
// that is not there 404.
func Recordings(lib RecordingOpener, log zerolog.Logger) http.Handler {
	log = log.With().Str("component", "recordings").Logger()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file := r.PathValue("file")
		q := r.URL.Query()
		f, err := lib.Open(file, q.Get("exp"), q.Get("sig"))
		switch {
		case errors.Is(err, recording.ErrBadName), errors.Is(err, recording.ErrNotFound):
			WriteError(w, http.StatusNotFound, "no such recording")
			return
		case errors.Is(err, recording.ErrForbidden):
			log.Info().Str("remote", r.RemoteAddr).Msg("recording link refused: wrong signature or expired")
			WriteError(w, http.StatusForbidden, "this recording link is wrong or has expired")
			return
		case err != nil:
			log.Error().Err(err).Msg("recording: open")
			WriteError(w, http.StatusInternalServerError, "recording unavailable")
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			WriteError(w, http.StatusInternalServerError, "recording unavailable")
			return
		}
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Header().Set("Cache-Control", "private, max-age=3600")
		http.ServeContent(w, r, file, st.ModTime(), f)
	})
}
