// Package providerhttp is the HTTP exchange the payment providers'
// adapters share: send a request, read a bounded answer, turn a failure
// into a *payment.ProviderError (temporary for transport errors, 429 and
// 5xx) and decode a 2xx JSON answer.
//
// It imports the standard library and billing/payment only; each adapter
// builds its own request (authentication, body encoding, idempotency) and
// reads its provider's error document.
package providerhttp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/meterd/meterd/billing/payment"
)

// maxAnswer bounds the answer read.
const maxAnswer = 4 << 20

// ErrorOf reads the provider's code and message from a non-2xx answer's
// body (empty when it is not the provider's error document).
type ErrorOf func(body []byte) (code, message string)

// Do sends req with client and decodes a 2xx JSON answer into out (left
// alone when nil). provider and op name the exchange in errors.
func Do(client *http.Client, req *http.Request, provider, op string, errorOf ErrorOf, out any) error {
	resp, err := client.Do(req)
	if err != nil {
		return &payment.ProviderError{Provider: provider, Op: op, Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &payment.ProviderError{Provider: provider, Op: op, Status: resp.StatusCode, Temporary: true, Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		code, msg := errorOf(raw)
		return &payment.ProviderError{Provider: provider, Op: op, Status: resp.StatusCode, Code: code, Message: msg,
			Temporary: resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &payment.ProviderError{Provider: provider, Op: op, Status: resp.StatusCode, Temporary: true, Err: fmt.Errorf("decode answer: %w", err)}
		}
	}
	return nil
}
