package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmlink/crmlink/routing/callcard"
)

// newCallCards builds the incoming-call card when amocrm.call_card is on (nil otherwise)
// and exports its counters.
func (p *App) newCallCards() *callcard.Cards {
	if !p.cfg.AmoCRM.CallCard.Enabled || p.crm == nil {
		return nil
	}
	c := callcard.New(p.crm, callcard.Options{
		Fresh: p.cfg.AmoCRM.CallCard.MaxDelay, Region: p.cfg.Routing.DefaultRegion, Logger: p.log,
	})
	p.metrics.registry.MustRegister(cardCollector{c})
	return c
}

// cardCollector exports callcard.Stats as crmlink_call_cards_total{result}.
type cardCollector struct{ c *callcard.Cards }

var cardsDesc = prometheus.NewDesc("crmlink_call_cards_total",
	"Incoming-call cards (amoCRM call events) by result: sent; dropped because the budget could not send them within amocrm.call_card.max_delay of the ring; failed (amoCRM refused).",
	[]string{"result"}, nil)

func (cardCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cardsDesc }

func (k cardCollector) Collect(ch chan<- prometheus.Metric) {
	s := k.c.Stats()
	for result, n := range map[string]int64{"sent": s.Sent, "dropped": s.Dropped, "failed": s.Failed} {
		ch <- prometheus.MustNewConstMetric(cardsDesc, prometheus.CounterValue, float64(n), result)
	}
}

// cardWave and cardRinging hand the front ends' rings to the card (nothing when it is off).
func (p *App) cardWave(r callcard.Ring) {
	if p.Cards != nil {
		p.Cards.Wave(r)
	}
}

func (p *App) cardRinging(r callcard.Ring) {
	if p.Cards != nil {
		p.Cards.Ringing(r)
	}
}
