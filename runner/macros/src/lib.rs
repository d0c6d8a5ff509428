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
//! With `each = EXPR` the fn takes one parameter and becomes one test per instance:
//!
//! ```ignore
//! #[buildtest::test(each = [("debian", debian()), ("busybox", busybox())])]
//! fn greet_runs(base: State) -> Test { Test::on(base).check(cmd(["/greet"])) }
//! ```
//!
//! `EXPR` is any `IntoIterator` of `(label, value)` pairs; it is evaluated when tests are listed
//! (for the labels) and again when an instance runs (to take its value), so it must be pure.
//! The registration then holds two generated fns instead of the test fn: one returning the
//! labels, one building the instance with a given label (both through
//! `::buildtest::__private`). Each instance is named `<fn path>::<label>`.
//!
//! Misuse — unknown arguments on the attribute, parameters without `each` (or not exactly one
//! with it), `async`, generics, a return type other than `Test`, anything that is not a fn — is
//! a compile error pointing at the offending part.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Ident, ItemFn, Lit, Meta, ReturnType, Token, Type};

/// The attribute's arguments: nothing, or `each = EXPR`.
struct Args {
    each: Option<Expr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Ok(Args { each: None });
        }
        let key: Ident = input.parse()?;
        if key != "each" {
            return Err(syn::Error::new_spanned(
                &key,
                "#[buildtest::test] takes only `each = <(label, input) pairs>`; use `#[ignore]` \
                 to ignore a test and `Test::timeout` for a per-test timeout",
            ));
        }
        input.parse::<Token![=]>()?;
        let each: Expr = input.parse()?;
        if !input.is_empty() {
            let _ = input.parse::<Token![,]>()?;
            if !input.is_empty() {
                return Err(input.error("unexpected tokens after `each = …`"));
            }
        }
        Ok(Args { each: Some(each) })
    }
}

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
    let each = match syn::parse2::<Args>(args) {
        Ok(args) => args.each,
        Err(err) => {
            errors.push(err);
            None
        }
    };
    check_signature(&func, each.is_some(), &mut errors);
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
    let (helpers, build) = match &each {
        None => (
            quote!(),
            quote_spanned!(span=> ::buildtest::__private::Build::Single(#ident)),
        ),
        Some(each) => {
            let each_span = each.span();
            (
                quote_spanned! {each_span=>
                    fn labels() -> ::buildtest::__private::Labels {
                        ::buildtest::__private::instance_labels(#each)
                    }
                    fn instance(label: &str) -> ::core::option::Option<::buildtest::Test> {
                        ::buildtest::__private::instance_build(#each, label, #ident)
                    }
                },
                quote_spanned!(span=> ::buildtest::__private::Build::Each { labels, instance }),
            )
        }
    };
    let registration = quote_spanned! {span=>
        #[doc(hidden)]
        const _: () = {
            #helpers
            #[::buildtest::__private::linkme::distributed_slice(::buildtest::__private::TESTS)]
            #[linkme(crate = ::buildtest::__private::linkme)]
            static TEST: ::buildtest::__private::TestDef = ::buildtest::__private::TestDef {
                module_path: ::core::module_path!(),
                fn_name: #fn_name,
                ignored: #ignored,
                ignore_reason: #reason,
                file: ::core::file!(),
                line: ::core::line!(),
                build: #build,
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

fn check_signature(func: &ItemFn, each: bool, errors: &mut Vec<syn::Error>) {
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
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "#[buildtest::test] functions cannot be variadic",
        ));
    } else if each {
        if sig.inputs.len() != 1 || matches!(sig.inputs.first(), Some(syn::FnArg::Receiver(_))) {
            let message = "#[buildtest::test(each = …)] functions take exactly one parameter, \
                           the instance's input: `fn name(input: T) -> Test`";
            errors.push(if sig.inputs.is_empty() {
                syn::Error::new(sig.paren_token.span.join(), message)
            } else {
                syn::Error::new_spanned(&sig.inputs, message)
            });
        }
    } else if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            "#[buildtest::test] functions take no parameters: `fn name() -> Test`; to run the \
             same checks on several inputs, use `#[buildtest::test(each = [(\"label\", input), …])]` \
             and `fn name(input: T) -> Test`",
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
