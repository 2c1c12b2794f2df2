package hub

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ErrTLS is a TLS certificate or key the hub cannot serve with.
var ErrTLS = errors.New("TLS")

// loadTLS reads the certificate chain and private key the API is served
// with (PEM, as certbot or any ACME client writes them); neither is plain
// HTTP. Each problem names the file it is in.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together: give both, or neither for plain HTTP", ErrTLS)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-cert: %w", ErrTLS, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-key: %w", ErrTLS, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: --tls-cert %s: no PEM certificate in it", ErrTLS, certFile)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("%w: --tls-cert %s: %w", ErrTLS, certFile, err)
	}
	if err := checkKey(keyPEM); err != nil {
		return nil, fmt.Errorf("%w: --tls-key %s: %w", ErrTLS, keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-key %s is not the key of --tls-cert %s: %w", ErrTLS, keyFile, certFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// checkKey says whether data holds a PEM private key Go can use, so that a
// wrong file is named before the pair is checked against each other.
func checkKey(data []byte) error {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return errors.New("no PEM private key in it")
		}
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			_, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			_, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			_, err = x509.ParseECPrivateKey(block.Bytes)
		case "CERTIFICATE":
			return errors.New("it holds a certificate, not a private key (swapped with --tls-cert?)")
		default:
			continue
		}
		return err
	}
}
