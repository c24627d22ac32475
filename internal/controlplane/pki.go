package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is what the apiserver needs to authenticate and be authenticated,
// generated with Go's crypto so the machine needs no openssl.
type pki struct {
	caCert     []byte // PEM; the serving certificate is its own CA
	servingKey string // file paths inside the work dir
	servingCrt string
	saKey      string // service-account signing key (private)
	saPub      string // service-account verification key (public)
	adminToken string
	tokensFile string
}

func newPKI(dir string) (*pki, error) {
	p := &pki{
		servingKey: filepath.Join(dir, "apiserver.key"),
		servingCrt: filepath.Join(dir, "apiserver.crt"),
		saKey:      filepath.Join(dir, "sa.key"),
		saPub:      filepath.Join(dir, "sa.pub"),
		tokensFile: filepath.Join(dir, "tokens.csv"),
	}
	if err := p.writeServingCert(); err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	if err := p.writeServiceAccountKeys(); err != nil {
		return nil, fmt.Errorf("service-account keys: %w", err)
	}
	if err := p.writeTokens(); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return p, nil
}

// writeServingCert makes a self-signed certificate for the loopback names
// clients use, marked as a CA so clients can trust it directly (CAData)
// instead of skipping verification.
func (p *pki) writeServingCert() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "rollsafe-controlplane"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	p.caCert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(p.servingCrt, p.caCert, 0o600); err != nil {
		return err
	}
	return writeECKey(p.servingKey, key)
}

func (p *pki) writeServiceAccountKeys() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeECKey(p.saKey, key); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

// writeTokens writes the static token file with one admin in system:masters.
// Other identities come from ServiceAccount tokens or impersonation, which
// need no apiserver restart.
func (p *pki) writeTokens() error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	p.adminToken = hex.EncodeToString(b)
	line := fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n", p.adminToken)
	return os.WriteFile(p.tokensFile, []byte(line), 0o600)
}

func writeECKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}
