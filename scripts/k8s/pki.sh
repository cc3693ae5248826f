#!/usr/bin/env bash
# The cluster's PKI and kubeconfigs, made once with openssl under $K8S_STATE/pki (idempotent: existing
# files are kept). One CA signs every certificate; the service-account key pair is separate.
set -euo pipefail
# shellcheck source=scripts/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKI="$K8S_STATE/pki"
DAYS=3650

# cert <name> <subject> [subjectAltName]: an EC key and a certificate signed by the CA
cert() {
    local name="$1" subj="$2" san="${3:-}"
    [ -f "$PKI/$name.crt" ] && return
    openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
    local ext="$PKI/$name.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [ -n "$san" ]; then
            echo "extendedKeyUsage=serverAuth,clientAuth"
            echo "subjectAltName=$san"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days "$DAYS" -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null \
        || die "openssl could not sign $name.crt"
    rm -f "$PKI/$name.csr" "$ext"
}

# kubeconfig <name> <cert name>: a kubeconfig that authenticates with <cert name>.crt/.key
kubeconfig() {
    local name="$1" certname="$2"
    cat >"$PKI/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: skydriver-k8s
    cluster:
      certificate-authority: $PKI/ca.crt
      server: https://$BRIDGE_IP:$APISERVER_PORT
users:
  - name: $certname
    user:
      client-certificate: $PKI/$certname.crt
      client-key: $PKI/$certname.key
contexts:
  - name: skydriver-k8s
    context:
      cluster: skydriver-k8s
      user: $certname
current-context: skydriver-k8s
EOF
}

main() {
    command -v openssl >/dev/null || die "openssl is missing; apt-get install openssl"
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    if [ ! -f "$PKI/ca.crt" ]; then
        log "creating the cluster CA and certificates in $PKI"
        openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
        openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=skydriver-k8s-ca" -days "$DAYS" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -out "$PKI/ca.crt" 2>/dev/null
    fi
    if [ ! -f "$PKI/sa.key" ]; then
        openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
        openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    fi
    local svc="kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
    cert apiserver "/CN=kube-apiserver" "IP:$BRIDGE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:$svc"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    cert admin "/O=system:masters/CN=skydriver-k8s-admin"
    cert kube-controller-manager "/CN=system:kube-controller-manager"
    cert kube-scheduler "/CN=system:kube-scheduler"
    cert kube-proxy "/CN=system:kube-proxy"
    cert node "/O=system:nodes/CN=system:node:$NODE_NAME"
    cert kubelet-serving "/CN=$NODE_NAME" "IP:127.0.0.1,DNS:$NODE_NAME"
    kubeconfig admin admin
    kubeconfig kube-controller-manager kube-controller-manager
    kubeconfig kube-scheduler kube-scheduler
    kubeconfig kube-proxy kube-proxy
    kubeconfig kubelet node
    chmod 600 "$PKI"/*.key
}

main "$@"; exit
