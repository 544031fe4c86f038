// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Credentials for the Kubernetes API from a kubeconfig or the in-cluster service account. */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <yaml.h>
#include "kubeauth.h"
#include "log.h"
#include "secret.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

void kubeauth_free(struct kube_auth *a)
{
	free(a->server);
	free(a->ca_file);
	free(a->ca_data);
	free(a->token);
	free(a->token_file);
	free(a->cert_file);
	free(a->key_file);
	free(a->cert_data);
	free(a->key_data);
	memset(a, 0, sizeof(*a));
}

/* YAML (a kubeconfig) into a json-c tree; every scalar a string. */
static json_object *yaml_node(yaml_parser_t *p, yaml_event_t *first);

static json_object *yaml_node(yaml_parser_t *p, yaml_event_t *ev)
{
	json_object *o = NULL;
	yaml_event_t e;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return json_object_new_string_len((const char *)ev->data.scalar.value,
						  (int)ev->data.scalar.length);
	case YAML_SEQUENCE_START_EVENT:
		o = json_object_new_array();
		for (;;) {
			json_object *v;

			if (!yaml_parser_parse(p, &e))
				goto bad;
			if (e.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&e);
				return o;
			}
			v = yaml_node(p, &e);
			yaml_event_delete(&e);
			if (!v)
				goto bad;
			json_object_array_add(o, v);
		}
	case YAML_MAPPING_START_EVENT:
		o = json_object_new_object();
		for (;;) {
			json_object *v;
			char *key;

			if (!yaml_parser_parse(p, &e))
				goto bad;
			if (e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				return o;
			}
			if (e.type != YAML_SCALAR_EVENT) {
				yaml_event_delete(&e);
				goto bad;
			}
			key = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
			yaml_event_delete(&e);
			if (!key || !yaml_parser_parse(p, &e)) {
				free(key);
				goto bad;
			}
			v = yaml_node(p, &e);
			yaml_event_delete(&e);
			if (!v) {
				free(key);
				goto bad;
			}
			json_object_object_add(o, key, v);
			free(key);
		}
	default:
		return NULL; /* aliases and the like: not in kubeconfigs */
	}
bad:
	json_object_put(o);
	return NULL;
}

static json_object *yaml_load(const char *path)
{
	FILE *f = fopen(path, "r");
	yaml_parser_t p;
	yaml_event_t e;
	json_object *root = NULL;

	if (!f)
		return NULL;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	/* stream start, document start, then the root node */
	while (yaml_parser_parse(&p, &e)) {
		yaml_event_type_t t = e.type;

		if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
		    t == YAML_SCALAR_EVENT) {
			root = yaml_node(&p, &e);
			yaml_event_delete(&e);
			break;
		}
		yaml_event_delete(&e);
		if (t == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	fclose(f);
	return root;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The entry of a named list (clusters, users, contexts) and its inner object. */
static json_object *named(json_object *root, const char *list, const char *name, const char *inner)
{
	json_object *arr, *v;

	if (!name || !json_object_object_get_ex(root, list, &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *n = jstr(e, "name");

		if (n && strcmp(n, name) == 0 && json_object_object_get_ex(e, inner, &v))
			return v;
	}
	return NULL;
}

static char *b64_decode(const char *in, size_t *len)
{
	size_t n = strlen(in);
	unsigned char *out = malloc(n / 4 * 3 + 4);
	int r;

	if (!out)
		return NULL;
	r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (r < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts padding bytes as data. */
	while (n && in[n - 1] == '=') {
		n--;
		r--;
	}
	out[r] = 0;
	*len = (size_t)r;
	return (char *)out;
}

/* A path from a kubeconfig: relative ones are relative to the kubeconfig's directory. */
static char *kc_path(const char *kubeconfig, const char *p)
{
	char *copy, *dir, *out;

	if (!p)
		return NULL;
	if (p[0] == '/')
		return strdup(p);
	copy = strdup(kubeconfig);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		out = NULL;
	free(copy);
	return out;
}

int kubeauth_from_kubeconfig(struct kube_auth *a, const char *path)
{
	json_object *root = yaml_load(path), *ctx, *cl, *us;
	const char *cur, *v;
	int err = -EINVAL;

	if (!root) {
		pr_err("kubeconfig %s: cannot read or parse it", path);
		return -EINVAL;
	}
	cur = jstr(root, "current-context");
	ctx = named(root, "contexts", cur, "context");
	cl = named(root, "clusters", jstr(ctx, "cluster"), "cluster");
	us = named(root, "users", jstr(ctx, "user"), "user");
	if (!ctx || !cl || !jstr(cl, "server")) {
		pr_err("kubeconfig %s: current-context '%s' has no cluster with a server", path,
		       cur ? cur : "");
		goto out;
	}
	a->server = strdup(jstr(cl, "server"));
	if (a->server && a->server[0] && a->server[strlen(a->server) - 1] == '/')
		a->server[strlen(a->server) - 1] = 0;
	a->ca_file = kc_path(path, jstr(cl, "certificate-authority"));
	if ((v = jstr(cl, "certificate-authority-data")) &&
	    !(a->ca_data = b64_decode(v, &a->ca_len)))
		goto bad_b64;
	v = jstr(cl, "insecure-skip-tls-verify");
	a->insecure = v && strcmp(v, "true") == 0;
	if (us) {
		if ((v = jstr(us, "token")))
			a->token = strdup(v);
		a->token_file = kc_path(path, jstr(us, "tokenFile"));
		a->cert_file = kc_path(path, jstr(us, "client-certificate"));
		a->key_file = kc_path(path, jstr(us, "client-key"));
		if ((v = jstr(us, "client-certificate-data")) &&
		    !(a->cert_data = b64_decode(v, &a->cert_len)))
			goto bad_b64;
		if ((v = jstr(us, "client-key-data")) &&
		    !(a->key_data = b64_decode(v, &a->key_len)))
			goto bad_b64;
		if (json_object_object_get_ex(us, "exec", NULL) ||
		    json_object_object_get_ex(us, "auth-provider", NULL))
			pr_warn("kubeconfig %s: exec/auth-provider credentials are not supported; "
				"use a token or client certificate",
				path);
	}
	err = a->server ? 0 : -ENOMEM;
	goto out;
bad_b64:
	pr_err("kubeconfig %s: bad base64 data", path);
out:
	json_object_put(root);
	return err;
}

int kubeauth_in_cluster(struct kube_auth *a)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	if (!host || !*host) {
		pr_err("in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a pod?)");
		return -EINVAL;
	}
	if (asprintf(&a->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port && *port ? port : "443") < 0)
		return -ENOMEM;
	a->ca_file = strdup(SA_DIR "/ca.crt");
	a->token_file = strdup(SA_DIR "/token");
	return a->ca_file && a->token_file ? 0 : -ENOMEM;
}

CURL *kubeauth_curl(const struct kube_auth *a, const char *url, struct curl_slist **hdrs)
{
	CURL *c = curl_easy_init();
	char *tok = a->token_file ? secret_read(a->token_file) : NULL;

	if (!c) {
		free(tok);
		return NULL;
	}
	*hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (tok || a->token) {
		char *h;

		if (asprintf(&h, "Authorization: Bearer %s", tok ? tok : a->token) >= 0) {
			*hdrs = curl_slist_append(*hdrs, h);
			free(h);
		}
	}
	free(tok);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "flowlens-collector");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	if (a->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	if (a->ca_data) {
		struct curl_blob b = { a->ca_data, a->ca_len, CURL_BLOB_COPY };

		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
	}
	if (a->cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, a->cert_file);
	if (a->key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, a->key_file);
	if (a->cert_data) {
		struct curl_blob b = { a->cert_data, a->cert_len, CURL_BLOB_COPY };

		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
	}
	if (a->key_data) {
		struct curl_blob b = { a->key_data, a->key_len, CURL_BLOB_COPY };

		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
	}
	if (a->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return c;
}
