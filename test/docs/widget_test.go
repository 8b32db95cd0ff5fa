package docs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAmoCRMWidgetIsComplete: the widget's manifest names what amoCRM's upload checks:
// every locale has its i18n file with the widget's texts and a label for each setting,
// and the logos amoCRM asks for of a widget in cards are there.
func TestAmoCRMWidgetIsComplete(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "amocrm-widget")
	var manifest struct {
		Widget struct {
			Locale []string
		}
		Locations []string
		Settings  map[string]struct {
			Name, Type string
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &manifest))
	require.NotEmpty(t, manifest.Widget.Locale)
	assert.Contains(t, manifest.Locations, "ccard-0", "the phone action works where numbers are shown")
	assert.Equal(t, "text", manifest.Settings["crmlink_url"].Type)
	assert.Equal(t, "users", manifest.Settings["keys"].Type, "one key per amoCRM user")
	for _, loc := range manifest.Widget.Locale {
		var lang struct {
			Widget   map[string]string
			Settings map[string]string
			Messages map[string]string
		}
		data, err := os.ReadFile(filepath.Join(dir, "i18n", loc+".json"))
		require.NoError(t, err, loc)
		require.NoError(t, json.Unmarshal(data, &lang), loc)
		for _, k := range []string{"name", "description", "short_description"} {
			assert.NotEmpty(t, lang.Widget[k], "%s: widget.%s", loc, k)
		}
		for key := range manifest.Settings {
			assert.NotEmpty(t, lang.Settings[key], "%s: settings.%s", loc, key)
		}
		for _, cause := range []string{"ringing", "not_configured", "manager_no_answer", "client_busy", "client_no_answer"} {
			assert.NotEmpty(t, lang.Messages[cause], "%s: messages.%s", loc, cause)
		}
	}
	for _, img := range []string{"logo_main.png", "logo_small.png", "logo_medium.png", "logo_min.png", "logo.png"} {
		assert.FileExists(t, filepath.Join(dir, "images", img))
	}
}
