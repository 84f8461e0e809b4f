package providerhttp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meterd/meterd/billing/payment"
)

func TestDo(t *testing.T) {
	errorOf := func(body []byte) (string, string) { return "code:" + string(body), "message" }
	for _, tt := range []struct {
		name      string
		status    int
		body      string
		wantErr   bool
		wantTemp  bool
		wantCode  string
		wantValue string
	}{
		{name: "ok", status: 200, body: `{"id":"order_1"}`, wantValue: "order_1"},
		{name: "refused", status: 400, body: `bad`, wantErr: true, wantCode: "code:bad"},
		{name: "rate limited", status: 429, body: `slow`, wantErr: true, wantTemp: true, wantCode: "code:slow"},
		{name: "server error", status: 502, body: `down`, wantErr: true, wantTemp: true, wantCode: "code:down"},
		{name: "undecodable 2xx", status: 200, body: `{`, wantErr: true, wantTemp: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			var out struct{ ID string }
			err := Do(srv.Client(), req, "test", "fetch_order", errorOf, &out)
			if !tt.wantErr {
				if err != nil || out.ID != tt.wantValue {
					t.Fatalf("err %v, id %q; want nil, %q", err, out.ID, tt.wantValue)
				}
				return
			}
			var pe *payment.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *payment.ProviderError", err)
			}
			if pe.Status != tt.status || pe.Temporary != tt.wantTemp || pe.Code != tt.wantCode || pe.Provider != "test" || pe.Op != "fetch_order" {
				t.Errorf("ProviderError = %+v", pe)
			}
		})
	}
	// A transport failure is temporary and has no status.
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	var pe *payment.ProviderError
	if err := Do(http.DefaultClient, req, "test", "create_order", errorOf, nil); !errors.As(err, &pe) || !pe.Temporary || pe.Status != 0 {
		t.Errorf("transport failure = %v", err)
	}
}
