// tiny-d128: tiny.mlir with d_head 128 (hidden 64, heads 4, kv_heads 2, ffn 128, cache 128 tokens);
// the DPA KV layout (pymodel.golden.dpa) needs d_head 128. Shapes edited by hand from tiny.mlir.
"builtin.module"() <{sym_name = "jit_layer"}> ({
  "func.func"() <{arg_attrs = [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}], function_type = (tensor<1x64xbf16>, tensor<i32>, tensor<64xbf16>, tensor<64x512xbf16>, tensor<64x256xbf16>, tensor<64x256xbf16>, tensor<512x64xbf16>, tensor<64xbf16>, tensor<64x128xbf16>, tensor<64x128xbf16>, tensor<128x64xbf16>, tensor<128x2x128xbf16>, tensor<128x2x128xbf16>) -> (tensor<1x64xbf16>, tensor<128x2x128xbf16>, tensor<128x2x128xbf16>), res_attrs = [{jax.result_info = "result[0]"}, {jax.result_info = "result[1]"}, {jax.result_info = "result[2]"}], sym_name = "main", sym_visibility = "public"}> ({
  ^bb0(%arg4: tensor<1x64xbf16>, %arg5: tensor<i32>, %arg6: tensor<64xbf16>, %arg7: tensor<64x512xbf16>, %arg8: tensor<64x256xbf16>, %arg9: tensor<64x256xbf16>, %arg10: tensor<512x64xbf16>, %arg11: tensor<64xbf16>, %arg12: tensor<64x128xbf16>, %arg13: tensor<64x128xbf16>, %arg14: tensor<128x64xbf16>, %arg15: tensor<128x2x128xbf16>, %arg16: tensor<128x2x128xbf16>):
    %13 = "stablehlo.convert"(%arg4) : (tensor<1x64xbf16>) -> tensor<1x64xf32>
    %14 = "stablehlo.multiply"(%13, %13) : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    %15 = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<f32>}> : () -> tensor<f32>
    %16 = "stablehlo.reduce"(%14, %15) <{dimensions = array<i64: 1>}> ({
    ^bb0(%arg23: tensor<f32>, %arg24: tensor<f32>):
      %110 = "stablehlo.add"(%arg23, %arg24) : (tensor<f32>, tensor<f32>) -> tensor<f32>
      "stablehlo.return"(%110) : (tensor<f32>) -> ()
    }) : (tensor<1x64xf32>, tensor<f32>) -> tensor<1xf32>
    %17 = "stablehlo.broadcast_in_dim"(%16) <{broadcast_dimensions = array<i64: 0>}> : (tensor<1xf32>) -> tensor<1x1xf32>
    %18 = "stablehlo.constant"() <{value = dense<6.400000e+01> : tensor<f32>}> : () -> tensor<f32>
    %19 = "stablehlo.broadcast_in_dim"(%18) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<1x1xf32>
    %20 = "stablehlo.divide"(%17, %19) : (tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x1xf32>
    %21 = "stablehlo.constant"() <{value = dense<9.99999997E-7> : tensor<f32>}> : () -> tensor<f32>
    %22 = "stablehlo.broadcast_in_dim"(%21) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<1x1xf32>
    %23 = "stablehlo.add"(%20, %22) : (tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x1xf32>
    %24 = "stablehlo.rsqrt"(%23) : (tensor<1x1xf32>) -> tensor<1x1xf32>
    %25 = "stablehlo.broadcast_in_dim"(%24) <{broadcast_dimensions = array<i64: 0, 1>}> : (tensor<1x1xf32>) -> tensor<1x64xf32>
    %26 = "stablehlo.multiply"(%13, %25) : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    %27 = "stablehlo.convert"(%arg6) : (tensor<64xbf16>) -> tensor<64xf32>
    %28 = "stablehlo.broadcast_in_dim"(%27) <{broadcast_dimensions = array<i64: 1>}> : (tensor<64xf32>) -> tensor<1x64xf32>
    %29 = "stablehlo.multiply"(%26, %28) : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    %30 = "stablehlo.convert"(%29) : (tensor<1x64xf32>) -> tensor<1x64xbf16>
    %31 = "stablehlo.dot_general"(%30, %arg7) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x64xbf16>, tensor<64x512xbf16>) -> tensor<1x512xbf16>
    %32 = "stablehlo.reshape"(%31) : (tensor<1x512xbf16>) -> tensor<2x2x128xbf16>
    %33 = "stablehlo.dot_general"(%30, %arg8) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x64xbf16>, tensor<64x256xbf16>) -> tensor<1x256xbf16>
    %34 = "stablehlo.reshape"(%33) : (tensor<1x256xbf16>) -> tensor<1x2x128xbf16>
    %35 = "stablehlo.dot_general"(%30, %arg9) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x64xbf16>, tensor<64x256xbf16>) -> tensor<1x256xbf16>
    %36 = "stablehlo.reshape"(%35) : (tensor<1x256xbf16>) -> tensor<1x2x128xbf16>
    %37 = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}> : () -> tensor<i32>
    %38 = "stablehlo.compare"(%arg5, %37) <{compare_type = #stablehlo<comparison_type SIGNED>, comparison_direction = #stablehlo<comparison_direction LT>}> : (tensor<i32>, tensor<i32>) -> tensor<i1>
    %39 = "stablehlo.constant"() <{value = dense<128> : tensor<i32>}> : () -> tensor<i32>
    %40 = "stablehlo.add"(%arg5, %39) : (tensor<i32>, tensor<i32>) -> tensor<i32>
    %41 = "stablehlo.select"(%38, %40, %arg5) : (tensor<i1>, tensor<i32>, tensor<i32>) -> tensor<i32>
    %42 = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}> : () -> tensor<i32>
    %43 = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}> : () -> tensor<i32>
    %44 = "stablehlo.dynamic_update_slice"(%arg15, %34, %41, %42, %43) : (tensor<128x2x128xbf16>, tensor<1x2x128xbf16>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<128x2x128xbf16>
    %45 = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}> : () -> tensor<i32>
    %46 = "stablehlo.compare"(%arg5, %45) <{compare_type = #stablehlo<comparison_type SIGNED>, comparison_direction = #stablehlo<comparison_direction LT>}> : (tensor<i32>, tensor<i32>) -> tensor<i1>
    %47 = "stablehlo.constant"() <{value = dense<128> : tensor<i32>}> : () -> tensor<i32>
    %48 = "stablehlo.add"(%arg5, %47) : (tensor<i32>, tensor<i32>) -> tensor<i32>
    %49 = "stablehlo.select"(%46, %48, %arg5) : (tensor<i1>, tensor<i32>, tensor<i32>) -> tensor<i32>
    %50 = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}> : () -> tensor<i32>
    %51 = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}> : () -> tensor<i32>
    %52 = "stablehlo.dynamic_update_slice"(%arg16, %36, %49, %50, %51) : (tensor<128x2x128xbf16>, tensor<1x2x128xbf16>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<128x2x128xbf16>
    %53 = "stablehlo.dot_general"(%32, %44) <{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [0], rhs_batching_dimensions = [1], lhs_contracting_dimensions = [2], rhs_contracting_dimensions = [2]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<2x2x128xbf16>, tensor<128x2x128xbf16>) -> tensor<2x2x128xf32>
    %54 = "stablehlo.constant"() <{value = dense<0.0883883461> : tensor<f32>}> : () -> tensor<f32>
    %55 = "stablehlo.broadcast_in_dim"(%54) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<2x2x128xf32>
    %56 = "stablehlo.multiply"(%53, %55) : (tensor<2x2x128xf32>, tensor<2x2x128xf32>) -> tensor<2x2x128xf32>
    %57 = "stablehlo.iota"() <{iota_dimension = 0 : i64}> : () -> tensor<128xi32>
    %58 = "stablehlo.broadcast_in_dim"(%57) <{broadcast_dimensions = array<i64: 2>}> : (tensor<128xi32>) -> tensor<1x1x128xi32>
    %59 = "stablehlo.broadcast_in_dim"(%arg5) <{broadcast_dimensions = array<i64>}> : (tensor<i32>) -> tensor<1x1x128xi32>
    %60 = "stablehlo.compare"(%58, %59) <{compare_type = #stablehlo<comparison_type SIGNED>, comparison_direction = #stablehlo<comparison_direction LE>}> : (tensor<1x1x128xi32>, tensor<1x1x128xi32>) -> tensor<1x1x128xi1>
    %61 = "stablehlo.constant"() <{value = dense<0xFF800000> : tensor<f32>}> : () -> tensor<f32>
    %62 = "func.call"(%60, %56, %61) <{callee = @_where}> : (tensor<1x1x128xi1>, tensor<2x2x128xf32>, tensor<f32>) -> tensor<2x2x128xf32>
    %63 = "stablehlo.constant"() <{value = dense<0xFF800000> : tensor<f32>}> : () -> tensor<f32>
    %64 = "stablehlo.reduce"(%62, %63) <{dimensions = array<i64: 2>}> ({
    ^bb0(%arg21: tensor<f32>, %arg22: tensor<f32>):
      %109 = "stablehlo.maximum"(%arg21, %arg22) : (tensor<f32>, tensor<f32>) -> tensor<f32>
      "stablehlo.return"(%109) : (tensor<f32>) -> ()
    }) : (tensor<2x2x128xf32>, tensor<f32>) -> tensor<2x2xf32>
    %65 = "stablehlo.constant"() <{value = dense<0xFF800000> : tensor<f32>}> : () -> tensor<f32>
    %66 = "stablehlo.broadcast_in_dim"(%65) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<2x2xf32>
    %67 = "stablehlo.maximum"(%66, %64) : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
    %68 = "stablehlo.broadcast_in_dim"(%67) <{broadcast_dimensions = array<i64: 0, 1>}> : (tensor<2x2xf32>) -> tensor<2x2x1xf32>
    %69 = "stablehlo.broadcast_in_dim"(%68) <{broadcast_dimensions = array<i64: 0, 1, 2>}> : (tensor<2x2x1xf32>) -> tensor<2x2x128xf32>
    %70 = "stablehlo.subtract"(%62, %69) : (tensor<2x2x128xf32>, tensor<2x2x128xf32>) -> tensor<2x2x128xf32>
    %71 = "stablehlo.exponential"(%70) : (tensor<2x2x128xf32>) -> tensor<2x2x128xf32>
    %72 = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<f32>}> : () -> tensor<f32>
    %73 = "stablehlo.reduce"(%71, %72) <{dimensions = array<i64: 2>}> ({
    ^bb0(%arg19: tensor<f32>, %arg20: tensor<f32>):
      %108 = "stablehlo.add"(%arg19, %arg20) : (tensor<f32>, tensor<f32>) -> tensor<f32>
      "stablehlo.return"(%108) : (tensor<f32>) -> ()
    }) : (tensor<2x2x128xf32>, tensor<f32>) -> tensor<2x2xf32>
    %74 = "stablehlo.broadcast_in_dim"(%73) <{broadcast_dimensions = array<i64: 0, 1>}> : (tensor<2x2xf32>) -> tensor<2x2x1xf32>
    %75 = "stablehlo.broadcast_in_dim"(%74) <{broadcast_dimensions = array<i64: 0, 1, 2>}> : (tensor<2x2x1xf32>) -> tensor<2x2x128xf32>
    %76 = "stablehlo.divide"(%71, %75) : (tensor<2x2x128xf32>, tensor<2x2x128xf32>) -> tensor<2x2x128xf32>
    %77 = "stablehlo.convert"(%76) : (tensor<2x2x128xf32>) -> tensor<2x2x128xbf16>
    %78 = "stablehlo.dot_general"(%77, %52) <{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [0], rhs_batching_dimensions = [1], lhs_contracting_dimensions = [2], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<2x2x128xbf16>, tensor<128x2x128xbf16>) -> tensor<2x2x128xf32>
    %79 = "stablehlo.convert"(%78) : (tensor<2x2x128xf32>) -> tensor<2x2x128xbf16>
    %80 = "stablehlo.reshape"(%79) : (tensor<2x2x128xbf16>) -> tensor<1x512xbf16>
    %81 = "stablehlo.dot_general"(%80, %arg10) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x512xbf16>, tensor<512x64xbf16>) -> tensor<1x64xbf16>
    %82 = "stablehlo.add"(%arg4, %81) : (tensor<1x64xbf16>, tensor<1x64xbf16>) -> tensor<1x64xbf16>
    %83 = "stablehlo.convert"(%82) : (tensor<1x64xbf16>) -> tensor<1x64xf32>
    %84 = "stablehlo.multiply"(%83, %83) : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    %85 = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<f32>}> : () -> tensor<f32>
    %86 = "stablehlo.reduce"(%84, %85) <{dimensions = array<i64: 1>}> ({
    ^bb0(%arg17: tensor<f32>, %arg18: tensor<f32>):
      %107 = "stablehlo.add"(%arg17, %arg18) : (tensor<f32>, tensor<f32>) -> tensor<f32>
      "stablehlo.return"(%107) : (tensor<f32>) -> ()
    }) : (tensor<1x64xf32>, tensor<f32>) -> tensor<1xf32>
    %87 = "stablehlo.broadcast_in_dim"(%86) <{broadcast_dimensions = array<i64: 0>}> : (tensor<1xf32>) -> tensor<1x1xf32>
    %88 = "stablehlo.constant"() <{value = dense<6.400000e+01> : tensor<f32>}> : () -> tensor<f32>
    %89 = "stablehlo.broadcast_in_dim"(%88) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<1x1xf32>
    %90 = "stablehlo.divide"(%87, %89) : (tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x1xf32>
    %91 = "stablehlo.constant"() <{value = dense<9.99999997E-7> : tensor<f32>}> : () -> tensor<f32>
    %92 = "stablehlo.broadcast_in_dim"(%91) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<1x1xf32>
    %93 = "stablehlo.add"(%90, %92) : (tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x1xf32>
    %94 = "stablehlo.rsqrt"(%93) : (tensor<1x1xf32>) -> tensor<1x1xf32>
    %95 = "stablehlo.broadcast_in_dim"(%94) <{broadcast_dimensions = array<i64: 0, 1>}> : (tensor<1x1xf32>) -> tensor<1x64xf32>
    %96 = "stablehlo.multiply"(%83, %95) : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    %97 = "stablehlo.convert"(%arg11) : (tensor<64xbf16>) -> tensor<64xf32>
    %98 = "stablehlo.broadcast_in_dim"(%97) <{broadcast_dimensions = array<i64: 1>}> : (tensor<64xf32>) -> tensor<1x64xf32>
    %99 = "stablehlo.multiply"(%96, %98) : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    %100 = "stablehlo.convert"(%99) : (tensor<1x64xf32>) -> tensor<1x64xbf16>
    %101 = "stablehlo.dot_general"(%100, %arg12) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x64xbf16>, tensor<64x128xbf16>) -> tensor<1x128xbf16>
    %102 = "func.call"(%101) <{callee = @silu}> : (tensor<1x128xbf16>) -> tensor<1x128xbf16>
    %103 = "stablehlo.dot_general"(%100, %arg13) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x64xbf16>, tensor<64x128xbf16>) -> tensor<1x128xbf16>
    %104 = "stablehlo.multiply"(%102, %103) : (tensor<1x128xbf16>, tensor<1x128xbf16>) -> tensor<1x128xbf16>
    %105 = "stablehlo.dot_general"(%104, %arg14) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>]}> : (tensor<1x128xbf16>, tensor<128x64xbf16>) -> tensor<1x64xbf16>
    %106 = "stablehlo.add"(%82, %105) : (tensor<1x64xbf16>, tensor<1x64xbf16>) -> tensor<1x64xbf16>
    "func.return"(%106, %44, %52) : (tensor<1x64xbf16>, tensor<128x2x128xbf16>, tensor<128x2x128xbf16>) -> ()
  }) : () -> ()
  "func.func"() <{arg_attrs = [{}, {}, {}], function_type = (tensor<1x1x128xi1>, tensor<2x2x128xf32>, tensor<f32>) -> tensor<2x2x128xf32>, res_attrs = [{}], sym_name = "_where", sym_visibility = "private"}> ({
  ^bb0(%arg1: tensor<1x1x128xi1>, %arg2: tensor<2x2x128xf32>, %arg3: tensor<f32>):
    %9 = "stablehlo.convert"(%arg3) : (tensor<f32>) -> tensor<f32>
    %10 = "stablehlo.broadcast_in_dim"(%arg1) <{broadcast_dimensions = array<i64: 0, 1, 2>}> : (tensor<1x1x128xi1>) -> tensor<2x2x128xi1>
    %11 = "stablehlo.broadcast_in_dim"(%9) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<2x2x128xf32>
    %12 = "stablehlo.select"(%10, %arg2, %11) : (tensor<2x2x128xi1>, tensor<2x2x128xf32>, tensor<2x2x128xf32>) -> tensor<2x2x128xf32>
    "func.return"(%12) : (tensor<2x2x128xf32>) -> ()
  }) : () -> ()
  "func.func"() <{arg_attrs = [{}], function_type = (tensor<1x128xbf16>) -> tensor<1x128xbf16>, res_attrs = [{}], sym_name = "silu", sym_visibility = "private"}> ({
  ^bb0(%arg0: tensor<1x128xbf16>):
    %0 = "stablehlo.negate"(%arg0) : (tensor<1x128xbf16>) -> tensor<1x128xbf16>
    %1 = "stablehlo.exponential"(%0) : (tensor<1x128xbf16>) -> tensor<1x128xbf16>
    %2 = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<bf16>}> : () -> tensor<bf16>
    %3 = "stablehlo.broadcast_in_dim"(%2) <{broadcast_dimensions = array<i64>}> : (tensor<bf16>) -> tensor<1x128xbf16>
    %4 = "stablehlo.add"(%3, %1) : (tensor<1x128xbf16>, tensor<1x128xbf16>) -> tensor<1x128xbf16>
    %5 = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<bf16>}> : () -> tensor<bf16>
    %6 = "stablehlo.broadcast_in_dim"(%5) <{broadcast_dimensions = array<i64>}> : (tensor<bf16>) -> tensor<1x128xbf16>
    %7 = "stablehlo.divide"(%6, %4) : (tensor<1x128xbf16>, tensor<1x128xbf16>) -> tensor<1x128xbf16>
    %8 = "stablehlo.multiply"(%arg0, %7) : (tensor<1x128xbf16>, tensor<1x128xbf16>) -> tensor<1x128xbf16>
    "func.return"(%8) : (tensor<1x128xbf16>) -> ()
  }) : () -> ()
}) {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} : () -> ()
