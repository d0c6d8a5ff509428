//! The `#[buildtest::test]` attribute. Token work only: the expansion touches
//! nothing but `::buildtest::__private`, so a user's crate depends on `buildtest` alone.
//!
//! ```ignore
//! #[buildtest::test]
//! fn curl_is_installed() -> Test { Test::on(base()).check(cmd(["curl", "--version"])) }
//! ```
//!
//! expands to the function, unchanged apart from a stripped `#[ignore]`, plus one element of
//! the linker-built registry `::buildtest::__private::TESTS` (linkme's distributed slice, so
//! no code runs before `main`):
//!
//! ```ignore
//! fn curl_is_installed() -> Test { /* … */ }
//! const _: () = {
//!     #[::buildtest::__private::linkme::distributed_slice(::buildtest::__private::TESTS)]
//!     #[linkme(crate = ::buildtest::__private::linkme)]
//!     static TEST: ::buildtest::__private::TestDef = ::buildtest::__private::TestDef {
//!         module_path: module_path!(), fn_name: "curl_is_installed", /* … */
//!     };
//! };
//! ```
//!
//! The registered test's name is `module_path!()` without the crate name, then `::` and the
//! fn's name (`images::debian::curl_is_installed`), computed by the runtime.
//!
//! Misuse — arguments on the attribute, parameters, `async`, generics, a return type other
//! than `Test`, anything that is not a fn — is a compile error pointing at the offending part.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, Meta, ReturnType, Type};

/// Registers `fn name() -> Test` as a buildtest test (see the crate docs).
///
/// Honours the standard `#[ignore]` and `#[ignore = "reason"]`, placed before or after it.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into()).into()
}

fn expand(args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new(
                first_span(&item),
                "#[buildtest::test] can only be used on a function `fn name() -> Test`",
            );
            let err = err.to_compile_error();
            return quote!(#err #item);
        }
    };
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "#[buildtest::test] takes no arguments; use `#[ignore]` to ignore a test \
             and `Test::timeout` for a per-test timeout",
        ));
    }
    check_signature(&func, &mut errors);
    let ignore = match take_ignore(&mut func.attrs) {
        Ok(ignore) => ignore,
        Err(err) => {
            errors.push(err);
            None
        }
    };
    if !errors.is_empty() {
        let errs = errors.iter().map(syn::Error::to_compile_error);
        return quote!(#(#errs)* #func);
    }

    let ident = &func.sig.ident;
    let fn_name = ident.to_string();
    let fn_name = fn_name.strip_prefix("r#").unwrap_or(&fn_name);
    let (ignored, reason) = match ignore {
        None => (false, quote!(::core::option::Option::None)),
        Some(None) => (true, quote!(::core::option::Option::None)),
        Some(Some(reason)) => (true, quote!(::core::option::Option::Some(#reason))),
    };
    let span = ident.span();
    let registration = quote_spanned! {span=>
        #[doc(hidden)]
        const _: () = {
            #[::buildtest::__private::linkme::distributed_slice(::buildtest::__private::TESTS)]
            #[linkme(crate = ::buildtest::__private::linkme)]
            static TEST: ::buildtest::__private::TestDef = ::buildtest::__private::TestDef {
                module_path: ::core::module_path!(),
                fn_name: #fn_name,
                ignored: #ignored,
                ignore_reason: #reason,
                file: ::core::file!(),
                line: ::core::line!(),
                build: #ident,
            };
        };
    };
    let mut out = func.into_token_stream();
    out.extend(registration);
    out
}

/// The span of the item's first token after its attributes, for errors about an item that
/// is not a fn.
fn first_span(item: &TokenStream2) -> Span {
    let mut tokens = item.clone().into_iter().peekable();
    while let Some(tt) = tokens.next() {
        match tt {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '#' => {
                // `#[...]` (or `#![...]`): skip the attribute.
                if matches!(tokens.peek(), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == '!')
                {
                    tokens.next();
                }
                tokens.next();
            }
            other => return other.span(),
        }
    }
    Span::call_site()
}

fn check_signature(func: &ItemFn, errors: &mut Vec<syn::Error>) {
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            token,
            "#[buildtest::test] functions cannot be async: return the `Test` description; \
             the harness runs it",
        ));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            "#[buildtest::test] functions cannot be unsafe",
        ));
    }
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            token,
            "#[buildtest::test] functions cannot be const",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "#[buildtest::test] functions cannot have an explicit ABI",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "#[buildtest::test] functions cannot be generic",
        ));
    }
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            "#[buildtest::test] functions take no parameters: `fn name() -> Test`",
        ));
    }
    match &sig.output {
        ReturnType::Default => errors.push(syn::Error::new(
            sig.paren_token.span.close(),
            "#[buildtest::test] functions must return `Test`: `fn name() -> Test`",
        )),
        ReturnType::Type(_, ty) if !is_test_type(ty) => errors.push(syn::Error::new(
            ty.span(),
            "#[buildtest::test] functions must return `Test`: `fn name() -> Test`",
        )),
        ReturnType::Type(..) => {}
    }
}

/// `Test`, `buildtest::Test`, `prelude::Test`…: a path ending in `Test` without arguments.
fn is_test_type(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|seg| seg.ident == "Test" && seg.arguments.is_empty()),
        Type::Paren(inner) => is_test_type(&inner.elem),
        Type::Group(inner) => is_test_type(&inner.elem),
        _ => false,
    }
}

/// Removes `#[ignore]` / `#[ignore = "reason"]` from the fn's attributes:
/// `None` = not ignored, `Some(reason)` = ignored.
fn take_ignore(attrs: &mut Vec<Attribute>) -> syn::Result<Option<Option<String>>> {
    let mut found = None;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !attr.path().is_ident("ignore") {
            kept.push(attr);
            continue;
        }
        let reason = match &attr.meta {
            Meta::Path(_) => None,
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "expected `#[ignore]` or `#[ignore = \"reason\"]`",
                    ));
                }
            },
            Meta::List(list) => {
                return Err(syn::Error::new_spanned(
                    list,
                    "expected `#[ignore]` or `#[ignore = \"reason\"]`",
                ));
            }
        };
        if found.is_some() {
            return Err(syn::Error::new_spanned(attr, "duplicate `#[ignore]`"));
        }
        found = Some(reason);
    }
    *attrs = kept;
    Ok(found)
}
