package mqtt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meterd/meterd/deploy/schema/schematest"
	"github.com/meterd/meterd/ingest"
	"github.com/meterd/meterd/ingest/broker"
	"github.com/meterd/meterd/meter"
	"github.com/meterd/meterd/meter/payload"
	"github.com/meterd/meterd/meter/postgres"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meterd test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots
}

// TestEmbeddedBrokerTLS: a meter publishes over the embedded broker's TLS
// listener with its own credentials; the reading is stored.
func TestEmbeddedBrokerTLS(t *testing.T) {
	t.Parallel()
	pool := schematest.New(t)
	ids := seedMeters(t, pool, "t1", 1)
	res := newResolver(t, pool)
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := ingest.NewPipeline(ingest.PipelineConfig{Linger: 5 * time.Millisecond}, postgres.NewStore(pool), nil, nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipe.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pipe.Stop(context.Background()) }()
	dec, err := ingest.NewMessageDecoder(payload.DefaultConfig(), meter.DefaultLimits(), res, m)
	if err != nil {
		t.Fatal(err)
	}
	cert, roots := selfSigned(t)
	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, Sink: ingest.NewSink(dec, pipe)}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Stop(context.Background()) }()

	u, _ := url.Parse("tls://" + b.TLSAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{ServerUrls: []*url.URL{u}, TlsCfg: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		KeepAlive: 30, ConnectUsername: "m-0001", ConnectPassword: []byte("secret-m-0001"), ClientConfig: paho.ClientConfig{ClientID: "tls-meter"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cm.Disconnect(context.Background()) }()
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Publish(ctx, &paho.Publish{Topic: payload.CanonicalTopic("t1", "m-0001"), QoS: 1, Payload: canonical(time.Now().UTC().Truncate(time.Second), 42)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, `SELECT count(*) FROM readings WHERE meter_id = $1 AND import_wh = 42`, ids[0]); n != 1 {
		t.Fatalf("%d readings stored over TLS", n)
	}
}
