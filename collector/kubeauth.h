/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Credentials for the Kubernetes API: a kubeconfig's current context (server, CA, token or
 * client certificate, inline or from files; YAML read with libyaml), or the pod's service
 * account when running in the cluster.
 */
#ifndef FLOWLENS_KUBEAUTH_H
#define FLOWLENS_KUBEAUTH_H

#include <stddef.h>
#include <curl/curl.h>

struct kube_auth {
	char *server; /* https://host:port, no trailing slash */
	char *ca_file;
	char *ca_data; /* PEM */
	size_t ca_len;
	char *token;
	char *token_file; /* re-read for every request: projected tokens rotate */
	char *cert_file, *key_file;
	char *cert_data, *key_data;
	size_t cert_len, key_len;
	int insecure;
};

/* Fills a from the kubeconfig at path (its current context). Returns 0 or -errno. */
int kubeauth_from_kubeconfig(struct kube_auth *a, const char *path);
/* Fills a from the service account mounted in the pod. Returns 0 or -errno. */
int kubeauth_in_cluster(struct kube_auth *a);
void kubeauth_free(struct kube_auth *a);
/*
 * A curl handle for url with a's credentials (the token file re-read now), JSON accepted;
 * *hdrs is the header list to free after the request. NULL when curl cannot make one.
 */
CURL *kubeauth_curl(const struct kube_auth *a, const char *url, struct curl_slist **hdrs);

#endif
